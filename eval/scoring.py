"""The two scoring modes on one batch: greedy ``generate`` and log-likelihood ``rank``.

``rank`` follows lm-evaluation-harness' multiple choice: the score of a label is the
sum of the log-probabilities of its target ``"<dimension>: <label>"`` after the
prompt. The prompt (and the target tokens all labels share, e.g. ``"intent:"``) is
run once per sample; its KV cache is expanded across the labels and only the
label-specific tokens are run again.

Text models prefill packed where the varlen kernel runs (``prefill``, :mod:`mmla.eval.packed`): the prompts
without padding and their shared prefix once; decoding and the label expansion then run as here.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch.profiler import record_function
from transformers import BatchEncoding

from mmla.eval.adapters.base import ModelAdapter

if TYPE_CHECKING:
    from mmla.eval.packed import Prefill

__all__ = ["candidate_token_ids", "generate_answers", "rank_scores", "rank_scores_full"]


def candidate_token_ids(adapter: ModelAdapter, targets: Sequence[str]) -> list[list[int]]:
    """Token ids of each candidate continuation, as the model would emit them after the prompt."""
    ids = [adapter.tokenizer(t, add_special_tokens=False)["input_ids"] for t in targets]
    if any(len(i) == 0 for i in ids):
        raise ValueError("a candidate answer tokenizes to nothing")
    return ids


def _packs(prefill: Prefill | None, inputs: BatchEncoding, min_tokens: int = 1) -> bool:
    """Whether this batch is prefilled packed: a packed run, text inputs only (ids and padding mask), and at least
    ``min_tokens`` tokens in every prompt."""
    if prefill is None or not prefill.packed or not set(inputs.keys()) <= {"input_ids", "attention_mask"}:
        return False
    return int(inputs["attention_mask"].sum(1).min()) >= min_tokens


def greedy_kwargs(adapter: ModelAdapter, max_new_tokens: int) -> dict[str, object]:
    """``generate`` options of every scoring path: greedy, whatever sampling the model's generation config sets."""
    return {"do_sample": False, "max_new_tokens": max_new_tokens, "pad_token_id": adapter.pad_token_id,
            "temperature": None, "top_p": None, "top_k": None}  # fmt: skip


@torch.inference_mode()
def generate_answers(
    adapter: ModelAdapter, inputs: BatchEncoding, *, max_new_tokens: int = 16, prefill: Prefill | None = None
) -> list[str]:
    """Greedy decoding (deterministic) of a left-padded batch; returns only the new text.

    ``prefill`` (:func:`mmla.eval.packed.resolve_prefill`): packed prompts without padding, then the same
    ``generate`` on the left-padded cache (:mod:`mmla.eval.packed`); ``None``: one padded forward.
    """
    if _packs(prefill, inputs, min_tokens=2):  # the last prompt token is generate's first step
        from mmla.eval.packed import packed_generate

        return adapter.decode(packed_generate(adapter, inputs, prefill, max_new_tokens=max_new_tokens))
    inputs = inputs.to(adapter.device)
    out = adapter.model.generate(**inputs, **greedy_kwargs(adapter, max_new_tokens))
    return adapter.decode(out[:, inputs["input_ids"].shape[1] :])


def cache_kwargs(model: torch.nn.Module, cache: object, method: str = "forward") -> dict[str, object]:
    """The cache argument of ``model.<method>`` (``forward``; ``prepare_inputs_for_generation`` for ``generate``):
    transformers >= 5.24 names it ``cache``, older and remote-code models ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(getattr(base, method)).parameters
    return {"cache": cache} if "cache" in params else {"past_key_values": cache}


def cache_of(out: object) -> object:
    """The KV cache a forward returned (``cache`` from transformers 5.24 on, ``past_key_values`` before)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _common_prefix(cands: Sequence[Sequence[int]]) -> int:
    n = min(len(c) for c in cands) - 1  # keep >= 1 label-specific token per candidate
    k = 0
    while k < n and all(c[k] == cands[0][k] for c in cands):
        k += 1
    return k


def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) for each position, in float32, without materialising a float copy of all logits at once."""
    out = torch.empty(targets.shape, dtype=torch.float32, device=logits.device)
    flat_logits, flat_t, flat_out = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), out.view(-1)
    step = max(1, (1 << 26) // logits.shape[-1])
    for s in range(0, flat_t.numel(), step):
        chunk = flat_logits[s : s + step].float()
        flat_out[s : s + step] = chunk.gather(-1, flat_t[s : s + step, None])[:, 0] - chunk.logsumexp(-1)
    return out


def _choice_logprobs(logits: torch.Tensor, choices: torch.Tensor) -> torch.Tensor:
    """log p(c) for each row of ``logits`` (B, V) and each token of ``choices`` (L,): (B, L) in float32, with one
    log-sum-exp per row (not one per choice), a few rows at a time."""
    out = torch.empty(logits.shape[0], choices.numel(), dtype=torch.float32, device=logits.device)
    step = max(1, (1 << 26) // logits.shape[-1])
    for s in range(0, logits.shape[0], step):
        chunk = logits[s : s + step].float()
        out[s : s + step] = chunk[:, choices] - chunk.logsumexp(-1, keepdim=True)
    return out


@torch.inference_mode()
def rank_scores(
    adapter: ModelAdapter,
    inputs: BatchEncoding,
    candidates: Sequence[Sequence[int]],
    *,
    max_rows: int = 1024,
    prefill: Prefill | None = None,
) -> torch.Tensor:
    """Sum of log-probs of each candidate after each prompt, shape ``(batch, num_candidates)``.

    ``inputs`` must be left-padded prompts (``add_generation_prompt=True``). The label-specific tokens
    run for at most ``max_rows`` (sample, label) pairs at a time, bounding the expanded cache's memory.
    ``prefill``: the prompt forward packed without padding (:mod:`mmla.eval.packed`), then the same labels.
    """
    if not adapter.shares_prompt_cache:
        return rank_scores_full(adapter, inputs, candidates)
    dev = adapter.device
    bsz = inputs["input_ids"].shape[0]
    k = _common_prefix(candidates)
    shared = torch.tensor(list(candidates[0][:k]), dtype=torch.long, device=dev)
    with record_function("mmla.rank.prompt"):
        if _packs(prefill, inputs) and getattr(adapter, "continuation_positions", None) is None:
            from mmla.eval.packed import packed_prompt_forward

            logits, cache, mask, last = packed_prompt_forward(adapter, inputs, candidates[0][:k], prefill)
        else:
            logits, cache, mask, last = _prompt_forward(adapter, inputs, shared)
    score = _token_logprobs(logits[:, :k], shared.expand(bsz, k)).sum(-1) if k else logits.new_zeros(bsz).float()
    suffixes = [list(c[k:]) for c in candidates]
    first = torch.tensor([s[0] for s in suffixes], device=dev)
    scores = score[:, None] + _choice_logprobs(logits[:, -1], first)
    # Only labels with more than one label-specific token need another forward; the others are scored already.
    multi = [j for j, s in enumerate(suffixes) if len(s) > 1]
    if not multi:
        return scores.cpu()
    with record_function("mmla.rank.label_tails"):
        scores[:, multi] += _label_tails(adapter, cache, mask, last, [suffixes[j] for j in multi], max_rows)
    return scores.cpu()


def _prompt_forward(adapter: ModelAdapter, inputs: BatchEncoding, shared: torch.Tensor
                    ) -> tuple[torch.Tensor, object, torch.Tensor, torch.Tensor]:  # fmt: skip
    """The padded prompt forward followed by the ``k`` target tokens all labels share: the logits of the last
    ``k + 1`` positions ``(B, k + 1, V)``, the cache, its padding mask and each row's last position."""
    model, dev = adapter.model, adapter.device
    ids, mask = inputs["input_ids"].to(dev), inputs["attention_mask"].to(dev)
    bsz, k = ids.shape[0], shared.numel()
    if k:
        ids = torch.cat([ids, shared.to(ids.dtype).expand(bsz, k)], 1)
        mask = torch.cat([mask, mask.new_ones(bsz, k)], 1)
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    # The prompt's other inputs (audio features, frames: audio/Omni families) go into the prompt's one forward.
    # M-RoPE families (continuation_positions) place the prompt themselves; the labels continue from there.
    extras = {key: val.to(dev) if isinstance(val, torch.Tensor) else val for key, val in inputs.items()
              if key not in ("input_ids", "attention_mask")}  # fmt: skip
    if getattr(adapter, "continuation_positions", None) is None:
        extras["position_ids"] = pos
    out = model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=k + 1, **extras)
    logits = out.logits[:, -(k + 1) :]  # (B, k+1, V): position j predicts shared[j]; the last the first label
    return logits, cache_of(out), mask, pos[:, -1]


def _label_tails(adapter: ModelAdapter, cache: object, mask: torch.Tensor, last: torch.Tensor,
                 suffixes: Sequence[Sequence[int]], max_rows: int) -> torch.Tensor:  # fmt: skip
    """Log-prob of each suffix's tokens after its first, continuing each prompt's cache: ``(batch, len(suffixes))``.

    One row per (sample, suffix), padded to the longest suffix: only multi-token labels reach here, so the rows and
    the cache copies number the samples times those labels (a few), not times the whole label set.
    """
    model, dev = adapter.model, adapter.device
    continuation = getattr(adapter, "continuation_positions", None)
    bsz, n_lab, m = mask.shape[0], len(suffixes), max(len(s) for s in suffixes)
    pad = adapter.pad_token_id
    suf = torch.tensor([list(s) + [pad] * (m - len(s)) for s in suffixes], device=dev)  # (n_lab, m)
    suf_mask = torch.tensor([[1] * len(s) + [0] * (m - len(s)) for s in suffixes], device=dev)
    tails = []
    # At most `max_rows` (sample, label) rows at a time: the expanded cache is a copy per label.
    step = max(1, max_rows // n_lab)
    for b0 in range(0, bsz, step):
        rows = slice(b0, min(b0 + step, bsz))
        nb = rows.stop - rows.start
        sub = _expand_cache(cache, rows, n_lab, whole=(nb == bsz))
        feed = suf[:, :-1].repeat(nb, 1)  # (nb*n_lab, m-1), row b*n_lab + l
        feed_mask = torch.cat([mask[rows].repeat_interleave(n_lab, 0), suf_mask[:, :-1].repeat(nb, 1)], 1)
        feed_pos = last[rows, None].repeat_interleave(n_lab, 0) + 1 + torch.arange(m - 1, device=dev)
        if continuation is not None:
            feed_pos = continuation(feed_pos, rows, n_lab)
        out = model(
            input_ids=feed, attention_mask=feed_mask, position_ids=feed_pos, use_cache=True, **cache_kwargs(model, sub)
        )
        lp = _token_logprobs(out.logits, suf[:, 1:].repeat(nb, 1)) * suf_mask[:, 1:].repeat(nb, 1)
        tails.append(lp.sum(-1).view(nb, n_lab))
        del out, sub
    return torch.cat(tails, 0)


def _expand_cache(cache: object, rows: slice, repeats: int, *, whole: bool) -> object:
    """A cache holding ``rows`` of ``cache``, each repeated ``repeats`` times (one per candidate label)."""
    if whole or not hasattr(cache, "layers"):
        cache.batch_repeat_interleave(repeats)  # in place: the prompt cache is not needed afterwards
        return cache
    from transformers import DynamicCache

    new = DynamicCache()
    for i, layer in enumerate(cache.layers):
        new.update(layer.keys[rows].repeat_interleave(repeats, 0), layer.values[rows].repeat_interleave(repeats, 0), i)
    return new


@torch.inference_mode()
def rank_scores_full(adapter: ModelAdapter, inputs: BatchEncoding, candidates: Sequence[Sequence[int]]) -> torch.Tensor:
    """Reference scoring without cache sharing: one full forward of prompt + candidate per label.

    Used for models whose positions are not a plain 1-D range (M-RoPE in Qwen2-VL); the
    model computes its own positions from the attention mask. Slower, same result.
    """
    model, dev = adapter.model, adapter.device
    inputs = inputs.to(dev)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    bsz, seq = ids.shape
    cols = []
    for cand in candidates:
        c = torch.tensor(list(cand), dtype=ids.dtype, device=dev).expand(bsz, -1)
        n = c.shape[1]
        feed = dict(inputs)
        for key, val in inputs.items():
            if isinstance(val, torch.Tensor) and val.shape[:2] == (bsz, seq) and key != "input_ids":
                feed[key] = torch.cat([val, (mask.new_ones if key == "attention_mask" else val.new_zeros)(bsz, n)], 1)
        feed["input_ids"] = torch.cat([ids, c], 1)
        # The last n+1 positions (the prompt's last token and the candidate): some models (the Omni thinker)
        # ignore logits_to_keep and return every position.
        logits = model(**feed, logits_to_keep=n + 1).logits[:, -(n + 1) : -1]
        cols.append(_token_logprobs(logits, c).sum(-1))
    return torch.stack(cols, 1).cpu()
