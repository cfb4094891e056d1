"""Padding-free prefill of a batch's prompts for text models, with the prefix they share computed once.

A length-sorted padded batch still spends compute on padding (``bench/profile_generate.py``: 69% of a padded batch
of 1,024 MMLA prompts is real tokens), and every prompt repeats the same first tokens: the chat template's system
turn and the fixed start of the instruction (``...in which the speaker says:``), 36 SmolLM2 tokens of real prompts
averaging 105-148 (about 30%), the same for the three prompt styles and across tasks
(``test_real_prompts_share_a_36_token_prefix_with_smollm2``). Prefill is most of an evaluation's time, so both are
removed here:

1. **The shared prefix** (the longest token prefix of every prompt in the batch, if at least
   :data:`MIN_PREFIX` tokens) runs once, as a one-row forward with the model's own attention.
2. **The rest of each prompt** runs in ONE packed row (no padding): ``position_ids`` continue after the prefix and
   restart per prompt, and the attention function registered here (:data:`KERNEL`: PyTorch's
   ``torch.nn.attention.varlen.varlen_attn``, FlashAttention-2 through aten, CUDA, fp16/bf16;
   :data:`REFERENCE`: per-segment SDPA on any device, for the CPU tests) attends each prompt's queries to the
   prefix keys and its own keys: the key/value rows of each segment are the prefix's followed by the prompt's
   (an index copy per layer), with causal masking aligned bottom-right (FlashAttention's rule when a segment has
   fewer queries than keys). The segment bounds travel to the attention function as one keyword argument
   (:class:`PackedSegments`), computed once on the CPU: no device sync per layer. No padding mask is built (the
   name has no mask function: transformers' mask creation returns ``None`` for it).
3. **Decoding continues in the usual padded layout.** The packed KV of each layer (prefix + packed prompts) is
   gathered into the left-padded ``(batch, heads, length, dim)`` layout a ``DynamicCache`` holds after a padded
   prefill (one index copy), so ``model.generate`` and rank scoring's label expansion run unchanged on it.

Why keep the padded layout for decoding instead of decoding packed too: the 16 decoding steps cost about a sixth of
the prefill (``bench/profile_generate.py``) and, per step, each row adds one token, so their padding is only the
prompt's (masked keys, no extra queries); a varlen decode would need a paged KV cache (``block_table``, torch
>= 2.12 only) to avoid the same copies. Generate mode prefills each prompt but its last token and hands
``generate`` the full left-padded prompt with that cache: ``generate`` runs the last prompt token as its first step
and produces every new token itself, so stopping, EOS and logits processing are exactly the padded path's (the
cost of that one-token step is one decoding step). Rank mode prefills each prompt plus the target tokens all labels
share, takes the logits of each prompt's last ``k + 1`` positions (``logits_to_keep`` as indices into the packed
row) and continues with the label expansion of :func:`mmla.eval.scoring.rank_scores`.

Text models only (``ModelAdapter.is_multimodal`` False, positions a plain 1-D range, full causal attention, a model
class that dispatches attention through transformers' ``AttentionInterface``): MLLMs keep the padded path (their
prompt holds vision tokens placed by the processor, and M-RoPE positions are not a 1-D range).
:func:`resolve_prefill` chooses: ``auto`` packs where the CUDA kernel runs (CUDA, torch >= 2.10, sm80+, fp16/bf16
model), ``on`` packs wherever the model allows (the reference where the kernel cannot run), ``off`` never.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.profiler import record_function

logger = logging.getLogger(__name__)

__all__ = [
    "KERNEL",
    "MIN_PREFIX",
    "PACKED_PREFILL",
    "REFERENCE",
    "PackedSegments",
    "Prefill",
    "packed_generate",
    "packed_prompt_forward",
    "resolve_prefill",
    "varlen_attention",
]

PACKED_PREFILL = ("auto", "on", "off")
"""Values of ``--packed-prefill``."""
KERNEL = "mmla_packed_prefill"
"""Attention function name of the packed prefill with ``varlen_attn`` (CUDA, fp16/bf16)."""
REFERENCE = "mmla_packed_prefill_reference"
"""The same with per-segment SDPA (any device and dtype): what the CPU tests run."""
MIN_PREFIX = 8
"""A shared prefix shorter than this is not split off (one more forward and its copies would not pay)."""
_HALF = (torch.float16, torch.bfloat16)


# ----------------------------------------------------------------------------------------------- choosing
@dataclass(frozen=True)
class Prefill:
    """The prefill :func:`resolve_prefill` chose for a run (recorded in the results)."""

    setting: str
    """The requested ``--packed-prefill`` value."""
    packed: bool
    kernel: str | None = None
    """:data:`KERNEL` or :data:`REFERENCE` when packed."""
    reason: str = ""
    """Why the padded path is used (empty when packed)."""
    share_prefix: bool = True

    def describe(self) -> str:
        if not self.packed:
            return "padded"
        return "packed (varlen_attn)" if self.kernel == KERNEL else "packed (SDPA reference)"


def kernel_unavailable_reason(dtype: torch.dtype | str | None = None, device: Any = None) -> str | None:
    """Why ``varlen_attn`` cannot run for a model of ``dtype`` on ``device`` (``None``: it can): torch version,
    CUDA, GPU generation, dtype. ``dtype`` None: not checked; ``device`` None: this process's CUDA device.
    Training's padding-free batches ask the same (``mmla.training.attention.varlen_unavailable_reason``)."""
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return f"torch {torch.__version__} has no torch.nn.attention.varlen.varlen_attn (needs >= 2.10)"
    if not torch.cuda.is_available() or (device is not None and torch.device(device).type != "cuda"):
        return "varlen_attn runs on CUDA only"
    if torch.version.hip is None:
        major, minor = torch.cuda.get_device_capability(device)
        if major < 8:
            return f"FlashAttention-2 needs an sm80+ GPU (this one is sm{major}{minor})"
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    if dtype is not None and dtype not in _HALF:
        return f"varlen_attn takes float16/bfloat16 only (the model is in {dtype})"
    return None


def config_unsupported_reason(config: Any, *, training: bool = False) -> str | None:
    """Why a model config cannot use the varlen attention functions: sliding windows, soft-capping, and in
    ``training`` attention dropout (inactive in evaluation)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layer_types = getattr(text, "layer_types", None) or []
    if any(t != "full_attention" for t in layer_types):
        return f"layer types {sorted(set(layer_types))} (only full attention is supported)"
    if getattr(text, "attn_logit_softcapping", None):
        return "attention logit soft-capping"
    if getattr(text, "use_sliding_window", False) and getattr(text, "sliding_window", None):
        return "sliding-window attention"
    if training and getattr(text, "attention_dropout", 0.0):
        return f"attention dropout {text.attention_dropout}"
    return None


def model_unsupported_reason(adapter: Any) -> str | None:
    """Why the adapter's model cannot be prefilled packed (``None``: it can)."""
    if adapter.is_multimodal:
        return f"{type(adapter).__name__} is multimodal (MLLMs keep the padded prefill)"
    if not adapter.shares_prompt_cache:
        return f"{type(adapter).__name__} does not use plain 1-D positions"
    model = adapter.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    can_set = getattr(type(base), "_can_set_attn_implementation", None)
    if can_set is None or not can_set():
        return f"{type(base).__name__} does not dispatch attention through transformers' AttentionInterface"
    config = base.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if not getattr(text, "is_causal", True) or getattr(text, "is_encoder_decoder", False):
        return "not a causal decoder"
    return config_unsupported_reason(config)


def resolve_prefill(adapter: Any, setting: str = "auto") -> Prefill:
    """The prefill of a run: ``auto`` packs where the kernel runs, ``on`` wherever the model allows, ``off`` never.

    ``on`` for a model that cannot be packed is a one-line ``ValueError``.
    """
    if setting not in PACKED_PREFILL:
        raise ValueError(f"--packed-prefill {setting!r}: choose one of {', '.join(PACKED_PREFILL)}")
    if setting == "off":
        return Prefill(setting, packed=False, reason="--packed-prefill off")
    model_reason = model_unsupported_reason(adapter)
    if model_reason is not None:
        if setting == "on":
            raise ValueError(f"--packed-prefill on: {adapter.model_id or 'the model'}: {model_reason}; "
                             "pass --packed-prefill auto or off")  # fmt: skip
        return Prefill(setting, packed=False, reason=model_reason)
    kernel_reason = kernel_unavailable_reason(getattr(adapter.model, "dtype", None), adapter.device)
    if kernel_reason is None:
        return Prefill(setting, packed=True, kernel=KERNEL)
    if setting == "on":
        return Prefill(setting, packed=True, kernel=REFERENCE)
    return Prefill(setting, packed=False, reason=kernel_reason)


# ----------------------------------------------------------------------------------------------- attention
@dataclass
class PackedSegments:
    """Segment bounds of one packed forward, handed to the attention function as ``mmla_packed=``.

    Queries: ``cu_q`` over the packed row (each prompt's tokens after the prefix). Keys: ``cu_k`` over the rows
    ``index_k`` selects from the cache's ``[prefix, packed row]`` (each segment: the prefix, then its prompt);
    ``index_k`` is ``None`` without a prefix (keys are the packed row itself, ``cu_k`` is ``cu_q``).
    """

    cu_q: torch.Tensor
    cu_k: torch.Tensor
    max_q: int
    max_k: int
    index_k: torch.Tensor | None


@functools.lru_cache(maxsize=4)
def _parameters(fn: Any) -> frozenset[str]:
    return frozenset(inspect.signature(fn).parameters)


def varlen_kernel_kwargs(fn: Any, q: torch.Tensor, k: torch.Tensor, scaling: float | None) -> dict[str, Any]:
    """Causal, scale and GQA arguments of ``varlen_attn`` in the API of the installed torch.

    torch 2.10 has ``varlen_attn(..., is_causal=False, return_aux=None)`` (FlashAttention-2 takes fewer key/value
    heads natively); later versions have ``scale``, ``window_size=(-1, 0)`` for causal, and ``enable_gqa``. Both
    align the causal mask bottom-right when a segment has fewer queries than keys (FlashAttention-2's rule).
    """
    params = _parameters(fn)
    kwargs: dict[str, Any] = {}
    if "window_size" in params:
        kwargs["window_size"] = (-1, 0)
    else:
        kwargs["is_causal"] = True
    if "enable_gqa" in params:
        kwargs["enable_gqa"] = q.shape[1] != k.shape[1]
    default = q.shape[-1] ** -0.5
    if "scale" in params:
        kwargs["scale"] = scaling
    elif scaling is not None and abs(scaling - default) > 1e-6 * default:
        kwargs["_prescale"] = scaling / default
    return kwargs


def varlen_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_q: torch.Tensor, cu_k: torch.Tensor,
                     scaling: float | None) -> torch.Tensor:  # fmt: skip
    """Causal SDPA on each segment, aligned bottom-right where a segment has more keys than queries: the meaning of
    the varlen kernel, for any device and dtype. ``q`` (Tq, Hq, D), ``k``/``v`` (Tk, Hkv, D) -> (Tq, Hq, Dv)."""
    import itertools

    import torch.nn.functional as F

    outs = []
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    for (q0, q1), (k0, k1) in zip(itertools.pairwise(bounds_q), itertools.pairwise(bounds_k), strict=True):
        if q1 == q0:
            continue
        qs, ks, vs = (x.transpose(0, 1).unsqueeze(0) for x in (q[q0:q1], k[k0:k1], v[k0:k1]))
        sq, sk = q1 - q0, k1 - k0
        mask = None if sq == sk else torch.ones(sq, sk, dtype=torch.bool, device=q.device).tril(sk - sq)
        o = F.scaled_dot_product_attention(
            qs, ks, vs, attn_mask=mask, is_causal=mask is None, scale=scaling, enable_gqa=qs.shape[1] != ks.shape[1]
        )
        outs.append(o.squeeze(0).transpose(0, 1))
    tail = q.shape[0] - bounds_q[-1]  # tokens after the last segment (pad_to_multiple_of): attend to themselves
    if tail:
        outs.append(torch.zeros_like(q[bounds_q[-1] :, :, : v.shape[-1]]))
    return torch.cat(outs, dim=0)


def varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_q: torch.Tensor, cu_k: torch.Tensor,
                     max_q: int, max_k: int, scaling: float | None, *, reference: bool) -> torch.Tensor:  # fmt: skip
    """Causal attention over packed segments: ``varlen_attn`` (``reference``: per-segment SDPA)."""
    if reference:
        return varlen_reference(q, k, v, cu_q, cu_k, scaling)
    from torch.nn.attention import varlen

    kwargs = varlen_kernel_kwargs(varlen.varlen_attn, q, k, scaling)
    if "_prescale" in kwargs:  # an API without `scale`: the kernel's own 1/sqrt(D), so scale q instead
        q = q * kwargs.pop("_prescale")
    dev = q.device
    return varlen.varlen_attn(q, k, v, cu_q.to(dev, torch.int32), cu_k.to(dev, torch.int32), max_q, max_k, **kwargs)


def _make_forward(reference: bool):
    def packed_attention_forward(
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        dropout: float = 0.0,
        scaling: float | None = None,
        sliding_window: int | None = None,
        softcap: float | None = None,
        s_aux: torch.Tensor | None = None,
        mmla_packed: PackedSegments | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        """transformers attention function for one packed row: ``query`` (1, Hq, T, D), ``key``/``value``
        (1, Hkv, prefix + T, D) -> (1, T, Hq, D)."""
        if mmla_packed is None or attention_mask is not None or query.shape[0] != 1:
            raise RuntimeError(
                f"{getattr(module, '__class__', type(module)).__name__}: the packed prefill got "
                f"{'no segments' if mmla_packed is None else 'a padding mask or several rows'}; "
                "this model does not take packed prompts: pass --packed-prefill off"
            )
        if dropout or sliding_window is not None or softcap is not None or s_aux is not None:
            raise RuntimeError("the packed prefill supports full causal attention only: pass --packed-prefill off")
        seg = mmla_packed
        q = query[0].transpose(0, 1)
        k, v = key[0].transpose(0, 1), value[0].transpose(0, 1)
        if seg.index_k is not None:  # each segment's keys: the prefix's, then its own
            index = seg.index_k.to(k.device)  # no-op on one device
            k, v = k.index_select(0, index), v.index_select(0, index)
        out = varlen_attention(q.contiguous(), k.contiguous(), v.contiguous(), seg.cu_q, seg.cu_k, seg.max_q,
                               seg.max_k, scaling, reference=reference)  # fmt: skip
        return out.unsqueeze(0), None

    return packed_attention_forward


kernel_attention_forward = _make_forward(reference=False)
reference_attention_forward = _make_forward(reference=True)


def register_packed_attention() -> None:
    """Register :data:`KERNEL` and :data:`REFERENCE` with transformers (idempotent). No mask function: the packed
    forward needs no mask, and mask creation returns ``None`` for a name without one."""
    from transformers import AttentionInterface

    AttentionInterface.register(KERNEL, kernel_attention_forward)
    AttentionInterface.register(REFERENCE, reference_attention_forward)


@contextlib.contextmanager
def _attention(model: torch.nn.Module, name: str) -> Iterator[None]:
    """Run ``model`` with attention function ``name`` (every transformers config in it), then restore."""
    from transformers import PreTrainedModel

    register_packed_attention()
    configs = {id(m.config): m.config for m in model.modules() if isinstance(m, PreTrainedModel)}
    before = {key: cfg._attn_implementation_internal for key, cfg in configs.items()}
    try:
        for cfg in configs.values():
            cfg._attn_implementation_internal = name
        yield
    finally:
        for key, cfg in configs.items():
            cfg._attn_implementation_internal = before[key]


# ----------------------------------------------------------------------------------------------- the plan
@dataclass
class _Plan:
    """Where each prompt's tokens go in the packed row and in the padded cache (all index tensors on CPU)."""

    prefix: torch.Tensor  # (p,) token ids
    tokens: torch.Tensor  # (T,) each prompt's tokens after the prefix
    positions: torch.Tensor  # (T,)
    segments: PackedSegments
    gather: torch.Tensor  # (B, W): cache rows [prefix, packed] -> left-padded layout
    mask: torch.Tensor  # (B, W) padding mask of that layout
    lengths: torch.Tensor  # (B,) prompt tokens per row (prefix included)


def _common_prefix(rows: torch.Tensor, lengths: torch.Tensor, cap: int) -> int:
    """Longest token prefix of all rows of ``rows`` (right-padded), at most ``cap`` tokens."""
    if cap <= 0:
        return 0
    head = rows[:, :cap]
    same = (head == head[:1]).all(0)
    return int(cap if bool(same.all()) else int((~same).nonzero()[0]))


def _plan(ids: torch.Tensor, mask: torch.Tensor, drop_last: int, extra: torch.Tensor | None, share: bool,
          keep: int = 1) -> _Plan:  # fmt: skip
    """Plan the packed forward of left-padded ``ids``: each row's real tokens without its last ``drop_last``,
    followed by ``extra`` tokens (rank's shared target tokens). The prefix leaves at least ``keep`` tokens of every
    row in the packed part (the positions whose logits are kept)."""
    ids, mask = ids.cpu(), mask.cpu().bool()
    bsz, width = ids.shape
    n = mask.sum(1)
    if bool((mask != (torch.arange(width)[None, :] >= (width - n)[:, None])).any()):
        raise ValueError("the packed prefill takes left-padded prompts")
    # Right-aligned -> left-aligned rows of real tokens.
    col = torch.arange(width)
    src = (col[None, :] + (width - n)[:, None]).clamp(max=width - 1)
    rows = ids.gather(1, src)
    lengths = n - drop_last
    if extra is not None and extra.numel():
        k = extra.numel()
        rows = torch.cat([rows, rows.new_zeros(bsz, k)], 1)
        put = lengths[:, None] + torch.arange(k)
        rows.scatter_(1, put, extra.to(rows.dtype).expand(bsz, k))
        lengths = lengths + k
    if int(lengths.min()) < keep:
        raise ValueError(f"the packed prefill needs at least {keep} prompt token(s) per row")
    p = _common_prefix(rows, lengths, int(lengths.min()) - keep) if share else 0
    if p < MIN_PREFIX:
        p = 0
    s = lengths - p  # tokens per row after the prefix (>= 1)
    cu_q = torch.zeros(bsz + 1, dtype=torch.int32)
    cu_q[1:] = s.cumsum(0)
    total = int(cu_q[-1])
    row_of = torch.repeat_interleave(torch.arange(bsz), s)
    offset = torch.arange(total) - cu_q[:-1].long().repeat_interleave(s)  # position within the row's suffix
    tokens = rows[row_of, p + offset]
    positions = p + offset
    max_q = int(s.max())
    wid = p + max_q
    # Left-padded cache layout (B, wid): row b holds its p + s_b tokens at the right end.
    slot = torch.arange(wid)[None, :] - (wid - p - s)[:, None]  # index within the row's own tokens, < 0 = padding
    pad_mask = slot >= 0
    own = slot.clamp(min=0)
    # Cache rows are [prefix (p), packed suffixes (total)].
    gather = torch.where(own < p, own, p + cu_q[:-1].long()[:, None] + own - p)
    gather = torch.where(pad_mask, gather, torch.zeros_like(gather))
    if p:
        cu_k = torch.zeros(bsz + 1, dtype=torch.int32)
        cu_k[1:] = (s + p).cumsum(0)
        index_k = gather[pad_mask]  # row-major: each row's prefix then its suffix
        segments = PackedSegments(cu_q, cu_k, max_q, wid, index_k)
    else:
        segments = PackedSegments(cu_q, cu_q, max_q, max_q, None)
    return _Plan(rows[0, :p].clone(), tokens, positions, segments, gather, pad_mask, lengths)


def _to(seg: PackedSegments, dev: torch.device) -> PackedSegments:
    index_k = seg.index_k.to(dev, non_blocking=True) if seg.index_k is not None else None
    return PackedSegments(seg.cu_q.to(dev, non_blocking=True), seg.cu_k.to(dev, non_blocking=True), seg.max_q,
                          seg.max_k, index_k)  # fmt: skip


@record_function("mmla.packed.prefill")
def _run(adapter: Any, plan: _Plan, prefill: Prefill, keep: torch.Tensor | int) -> tuple[torch.Tensor, Any]:
    """The prefix forward (if any) and the packed forward; returns (kept logits, the padded DynamicCache)."""
    from transformers import DynamicCache

    from mmla.eval.scoring import cache_kwargs, cache_of  # scoring imports this module lazily

    model, dev = adapter.model, adapter.device
    cache = None
    if plan.prefix.numel():
        out = model(input_ids=plan.prefix[None].to(dev), use_cache=True, logits_to_keep=1)
        cache = cache_of(out)
        del out
    seg = _to(plan.segments, dev)
    extra = cache_kwargs(model, cache) if cache is not None else {}
    keep_dev = keep.to(dev) if isinstance(keep, torch.Tensor) else keep
    with _attention(model, prefill.kernel or REFERENCE):
        out = model(input_ids=plan.tokens[None].to(dev), position_ids=plan.positions[None].to(dev), use_cache=True,
                    logits_to_keep=keep_dev, mmla_packed=seg, **extra)  # fmt: skip
    packed = cache_of(out)
    logits = out.logits[0]
    del out
    gather = plan.gather.to(dev)
    padded = DynamicCache()
    for i, layer in enumerate(packed.layers):
        # (1, H, rows, D) -> rows as the leading dim -> (B, W, H, D) -> (B, H, W, D)
        rows = gather.to(layer.keys.device)  # no-op on one device
        keys = layer.keys[0].transpose(0, 1)[rows].transpose(1, 2)
        values = layer.values[0].transpose(0, 1)[rows].transpose(1, 2)
        layer.keys = layer.values = None  # free each packed layer as soon as it is copied
        padded.update(keys, values, i)
    return logits, padded


# ----------------------------------------------------------------------------------------------- the two modes
@torch.inference_mode()
def packed_generate(adapter: Any, inputs: Any, prefill: Prefill, *, max_new_tokens: int) -> torch.Tensor:
    """Greedy decoding of a left-padded batch with a packed prefill; the new token ids (batch, new)."""
    from mmla.eval.scoring import cache_kwargs, greedy_kwargs  # scoring imports this module lazily

    model, dev = adapter.model, adapter.device
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    longest = int(mask.sum(1).max())
    ids, mask = ids[:, ids.shape[1] - longest :], mask[:, mask.shape[1] - longest :]  # no all-padding columns
    plan = _plan(ids, mask, drop_last=1, extra=None, share=prefill.share_prefix)
    _, cache = _run(adapter, plan, prefill, keep=1)
    ids, mask = ids.to(dev), mask.to(dev)
    with record_function("mmla.packed.decode"):
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            **greedy_kwargs(adapter, max_new_tokens),
            **cache_kwargs(model, cache, "prepare_inputs_for_generation"),
        )
    return out[:, ids.shape[1] :]


@torch.inference_mode()
def packed_prompt_forward(
    adapter: Any, inputs: Any, shared: Sequence[int], prefill: Prefill
) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
    """Rank mode's prompt forward, packed: each prompt followed by the ``k`` target tokens all labels share.

    Returns the logits of each row's last ``k + 1`` positions ``(B, k + 1, V)``, the left-padded cache, its padding
    mask ``(B, W)`` and each row's last position ``(B,)`` (what the label tokens continue from), on the device.
    """
    dev = adapter.device
    k = len(shared)
    plan = _plan(inputs["input_ids"], inputs["attention_mask"], drop_last=0,
                 extra=torch.tensor(list(shared), dtype=torch.long), share=prefill.share_prefix, keep=k + 1)  # fmt: skip
    ends = plan.segments.cu_q[1:].long()
    keep = (ends[:, None] - (k + 1) + torch.arange(k + 1)).reshape(-1)
    logits, cache = _run(adapter, plan, prefill, keep=keep)
    bsz = ends.numel()
    return logits.view(bsz, k + 1, -1), cache, plan.mask.to(dev).long(), (plan.lengths - 1).to(dev)
