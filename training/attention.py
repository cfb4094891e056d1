"""Speed settings of LoRA SFT: padding-free attention without a flash-attn wheel, and checkpointing by memory.

**Padding-free attention.** TRL's padding-free collator (``SFTConfig.padding_free``) concatenates a batch's rows into
one row of real tokens and passes ``position_ids``, ``cu_seq_lens_q/k`` and ``max_length_q/k``; transformers hands
them to the attention function as keyword arguments, as it does for ``flash_attention_2``. PyTorch >= 2.10 ships
``torch.nn.attention.varlen.varlen_attn`` (FlashAttention-2 through aten, with autograd; CUDA, fp16/bf16, sm80+).
:func:`register_varlen_attention` registers it through transformers' ``AttentionInterface`` under
:data:`VARLEN`, so ``attn_implementation="mmla_varlen"`` trains on padding-free batches with no extra package.
:data:`REFERENCE` is the same function with the kernel replaced by SDPA on each ``cu_seqlens`` segment: it runs on
any device and dtype, and is what the CPU tests compare against padded SDPA.

Batches that carry a 2-D ``attention_mask`` instead (padded batches, generation with a KV cache during model
selection) go to transformers' SDPA function with the SDPA mask, so the model stays usable for everything else.

**Gradient checkpointing by memory.** :func:`plan_checkpointing` estimates the activation memory of a LoRA step
without checkpointing (frozen base weights: only what the backward of the inputs and the LoRA branches needs) and
keeps checkpointing off where that fits in the free GPU memory: recomputing every layer's forward costs about a third
of a step.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from mmla.eval.packed import config_unsupported_reason as _config_unsupported_reason
from mmla.eval.packed import kernel_unavailable_reason, varlen_attention, varlen_reference

logger = logging.getLogger(__name__)

VARLEN = "mmla_varlen"
"""``attn_implementation`` name of ``torch.nn.attention.varlen.varlen_attn`` (CUDA, fp16/bf16)."""
REFERENCE = "mmla_varlen_reference"
"""Same attention function, each ``cu_seqlens`` segment through SDPA: any device and dtype (tests, CPU)."""

_HALF = (torch.float16, torch.bfloat16)


# ----------------------------------------------------------------------------------------------- availability
# The same questions as the packed prefill of evaluation (mmla.eval.packed); training also refuses attention dropout.
varlen_unavailable_reason = kernel_unavailable_reason


def config_unsupported_reason(config: Any) -> str | None:
    """Why a model config cannot train with the varlen functions (sliding windows, soft-capping, attention dropout)."""
    return _config_unsupported_reason(config, training=True)


# ----------------------------------------------------------------------------------------------- the functions
def _segments(query: torch.Tensor, kwargs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, int, int] | None:
    """``(cu_q, cu_k, max_q, max_k)`` of a padding-free batch, else ``None``.

    From the collator's ``cu_seq_lens_*``/``max_length_*`` (computed on the CPU, no sync), or else from packed
    ``position_ids`` of a one-row batch (one device-to-host sync per layer: a fallback only).
    """
    cu_q, cu_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    max_q, max_k = kwargs.get("max_length_q"), kwargs.get("max_length_k")
    if cu_q is not None and cu_k is not None and max_q is not None and max_k is not None:
        return cu_q, cu_k, int(max_q), int(max_k)
    pos = kwargs.get("position_ids")
    if pos is None or query.shape[0] != 1 or pos.shape[-1] != query.shape[2]:
        return None
    starts = (pos.reshape(-1) == 0).nonzero().flatten()
    if starts.numel() < 2 or int(starts[0]) != 0:
        return None
    cu = torch.cat([starts, starts.new_tensor([pos.shape[-1]])]).to(torch.int32)
    longest = int(cu.diff().max())
    return cu, cu, longest, longest


def _check_kwargs(dropout: float, sliding_window: Any, softcap: Any, s_aux: Any) -> None:
    if dropout:
        raise ValueError(f"attention dropout {dropout} is not supported by {VARLEN}; pass --attn_implementation sdpa")
    if sliding_window is not None or softcap is not None or s_aux is not None:
        raise ValueError(
            f"{VARLEN} supports full causal attention only (this model uses sliding windows, soft-capping or "
            "attention sinks); pass --attn_implementation sdpa"
        )


def _sdpa(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: Any,
          dropout: float, scaling: float | None, is_causal: bool | None, **kwargs: Any) -> tuple[torch.Tensor, None]:  # fmt: skip
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    for name in ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"):
        kwargs.pop(name, None)
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
    )


def _make_forward(kernel: bool):
    def attention_forward(
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        dropout: float = 0.0,
        scaling: float | None = None,
        sliding_window: int | None = None,
        softcap: float | None = None,
        is_causal: bool | None = None,
        s_aux: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        """transformers attention function: ``query`` (B, Hq, T, D), ``key``/``value`` (B, Hkv, T, D) ->
        (B, T, Hq, D). Padding-free batches (no 2-D mask, one sequence per ``cu_seqlens`` segment) take the
        varlen path; anything else (a padding mask, a KV cache) is SDPA."""
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        seg = None
        if attention_mask is None and causal and query.shape[2] == key.shape[2]:
            seg = _segments(query, kwargs)
        _check_kwargs(dropout if seg is not None else 0.0, sliding_window, softcap, s_aux)
        if seg is None:
            return _sdpa(module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs)
        cu_q, cu_k, max_q, max_k = seg
        batch, hq, t, d = query.shape
        q = query.transpose(1, 2).reshape(-1, hq, d)
        k = key.transpose(1, 2).reshape(-1, key.shape[1], d)
        v = value.transpose(1, 2).reshape(-1, value.shape[1], value.shape[-1])
        if kernel:
            out = _varlen_kernel(module, q, k, v, cu_q, cu_k, max_q, max_k, scaling)
        else:
            out = _varlen_reference(q, k, v, cu_q, cu_k, scaling)
        return out.reshape(batch, t, hq, -1), None

    return attention_forward


def _varlen_kernel(module: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_q: torch.Tensor,
                   cu_k: torch.Tensor, max_q: int, max_k: int, scaling: float | None) -> torch.Tensor:  # fmt: skip
    dtype = q.dtype
    if dtype not in _HALF:  # PEFT can upcast activations to fp32: back to the model's half dtype, as FA2 does
        from transformers.integrations.flash_attention import get_target_dtype

        target = get_target_dtype(q, module) or torch.bfloat16
        target = target if target in _HALF else torch.bfloat16
        q, k, v = q.to(target), k.to(target), v.to(target)
    return varlen_attention(q, k, v, cu_q, cu_k, max_q, max_k, scaling, reference=False).to(dtype)


# The kernel call (each torch API's arguments) and the per-segment SDPA reference are shared with the packed prefill
# of evaluation (mmla.eval.packed); the reference aligns causal masking bottom-right, the same as top-left here (a
# padding-free training row has as many queries as keys).
_varlen_reference = varlen_reference


varlen_attention_forward = _make_forward(kernel=True)
reference_attention_forward = _make_forward(kernel=False)


def _mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> Any:
    """Mask creation for the varlen names: no mask where no padding mask is given (the segments come as kwargs);
    with a padding mask (or a cache offset), SDPA's mask, for the SDPA fallback."""
    from transformers.masking_utils import sdpa_mask

    q_offset, kv_offset = kwargs.get("q_offset", 0), kwargs.get("kv_offset", 0)
    plain = not isinstance(q_offset, torch.Tensor) and q_offset == 0 and kv_offset == 0
    if attention_mask is None and plain and kwargs.get("q_length") == kwargs.get("kv_length"):
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register_varlen_attention(reference: bool = False) -> str:
    """Register the padding-free attention function (``reference``: the SDPA stand-in) with transformers.

    Returns the ``attn_implementation`` name to load a model with (:data:`VARLEN` or :data:`REFERENCE`).
    Idempotent; the kernel name is registered even where the kernel cannot run (it fails at the first call).
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    name = REFERENCE if reference else VARLEN
    AttentionInterface.register(name, reference_attention_forward if reference else varlen_attention_forward)
    AttentionMaskInterface.register(name, _mask)
    return name


def is_varlen(attn_implementation: str | None) -> bool:
    """Whether ``attn_implementation`` takes padding-free batches (FlashAttention or the varlen functions)."""
    return bool(attn_implementation) and (
        attn_implementation.startswith("flash_attention") or attn_implementation in (VARLEN, REFERENCE)
    )


# ----------------------------------------------------------------------------------------------- memory
GIB = 2**30


@dataclass(frozen=True)
class CheckpointingPlan:
    """The estimate behind the gradient-checkpointing choice (logged, and kept by the speed bench)."""

    checkpointing: bool
    batch_tokens: int
    activations_gib: float
    """Estimated activation memory of one micro-batch without checkpointing."""
    needed_gib: float
    """``activations_gib * safety + reserve_gib``: what must be free to train without checkpointing."""
    free_gib: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def activation_bytes_per_token(config: Any, *, dtype_bytes: int = 2, lora_dropout: float = 0.0) -> int:
    """Bytes a LoRA step keeps for the backward, per token, without checkpointing (all decoder layers).

    The base weights are frozen, so a linear layer keeps its input only for its LoRA branch. Per layer (h hidden,
    kv key/value width, I MLP width): two RMSNorms (input and normalised output, plus two fp32 copies each), q and k
    before and after RoPE, v, the attention output and its contiguous copy (o_proj's input), and the MLP's gate,
    up, SiLU(gate) and product (down_proj's input). LoRA dropout > 0 adds a dropped copy of every LoRA input (and its
    mask). Measured against ``torch.cuda.max_memory_allocated`` by ``bench/train_speed.py``.
    """
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    h = text.hidden_size
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or h // heads
    kv = (getattr(text, "num_key_value_heads", None) or heads) * head_dim
    q = heads * head_dim
    inter = getattr(text, "intermediate_size", None) or 4 * h
    half = (
        2 * h + 2 * h + 2 * q + 2 * kv + kv + 2 * q + 4 * inter
    )  # norms in/out, q/k pre+post RoPE, v, attn out x2, MLP
    fp32 = 4 * h  # RMSNorm's fp32 upcasts
    per_layer = dtype_bytes * half + 4 * fp32
    if lora_dropout:
        dropped = 3 * h + q + 2 * h + inter  # q/k/v, o, gate/up, down inputs, each dropped separately
        per_layer += (dtype_bytes + 1) * dropped
    return per_layer * text.num_hidden_layers + dtype_bytes * 4 * h  # + embeddings, final norm


def batch_tokens_bound(lengths: list[int], batch_size: int, *, padding_free: bool) -> int:
    """Tokens of the largest micro-batch to plan for.

    Padded batches: ``batch_size`` rows of the longest length (length grouping puts the longest rows together, and
    the Trainer's sampler serves that batch first). Padding-free batches hold random rows, whose sum is near
    ``batch_size * mean`` with spread ``sqrt(batch_size) * sd``: mean + 6 sd, at most the padded bound.
    """
    if not lengths:
        return 0
    worst = batch_size * max(lengths)
    if not padding_free:
        return worst
    mean = sum(lengths) / len(lengths)
    sd = (sum((n - mean) ** 2 for n in lengths) / len(lengths)) ** 0.5
    return min(worst, math.ceil(batch_size * mean + 6 * sd * batch_size**0.5))


def plan_checkpointing(
    config: Any,
    *,
    batch_tokens: int,
    free_bytes: int,
    dtype_bytes: int = 2,
    lora_dropout: float = 0.0,
    safety: float = 1.3,
    reserve_bytes: int = 3 * GIB,
) -> CheckpointingPlan:
    """Checkpointing off where a micro-batch's activations (× ``safety``) plus ``reserve_bytes`` (the LM head's
    tiles, optimizer state, allocator slack) fit in ``free_bytes`` (free GPU memory with the model loaded)."""
    act = activation_bytes_per_token(config, dtype_bytes=dtype_bytes, lora_dropout=lora_dropout) * batch_tokens
    needed = act * safety + reserve_bytes
    fits = needed <= free_bytes
    reason = (
        f"{act / GIB:.1f} GiB of activations for {batch_tokens} tokens "
        f"({'fit' if fits else 'do not fit'} in {free_bytes / GIB:.1f} GiB free)"
    )
    return CheckpointingPlan(
        checkpointing=not fits,
        batch_tokens=batch_tokens,
        activations_gib=round(act / GIB, 2),
        needed_gib=round(needed / GIB, 2),
        free_gib=round(free_bytes / GIB, 2),
        reason=reason,
    )
