"""Padding-free prefill (mmla.eval.packed): the same greedy tokens and rank scores as the padded path.

CPU, fp32, the SDPA stand-in of the varlen kernel (per-segment SDPA, bottom-right causal); the kernel's argument
mapping is checked with ``varlen_attn`` replaced by that stand-in in each torch API, and the real kernel (bf16) where
a GPU is there. Tiny random Llama and Qwen2 models with the tiny BPE tokenizer and the real MMLA prompts.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mmla.eval.adapters import CausalLMAdapter
from mmla.eval.adapters.base import VisionLanguageAdapter
from mmla.eval.packed import (
    KERNEL,
    MIN_PREFIX,
    REFERENCE,
    PackedSegments,
    Prefill,
    _attention,
    _plan,
    kernel_attention_forward,
    kernel_unavailable_reason,
    packed_generate,
    resolve_prefill,
    varlen_reference,
)
from mmla.eval.prompts import build_messages, build_target
from mmla.eval.scoring import candidate_token_ids, generate_answers, rank_scores
from mmla.loaders.tasks import get_task
from mmla.training.testing import CHAT_TEMPLATE, rig_to_answer, tiny_llama, tiny_qwen2, tiny_tokenizer

TEXTS = ["hello there", "i am so happy today, what a wonderful surprise and more words here", "ok",
         "why would you do that to me, seriously?", "thanks", "no way, please help me see you well"]  # fmt: skip
FAMILIES = {"llama": tiny_llama, "qwen2": tiny_qwen2}
ON = Prefill("on", packed=True, kernel=REFERENCE)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer(CHAT_TEMPLATE)  # a default system turn: prompts share a prefix of > MIN_PREFIX tokens


def _adapter(tok, family: str, seed: int = 0) -> CausalLMAdapter:
    return CausalLMAdapter(model=FAMILIES[family](len(tok), seed), processor=tok, model_id=f"tiny/{family}")


def _inputs(ad, task: str = "mintrec", texts=TEXTS):
    return ad.build_inputs([build_messages(get_task(task), t) for t in texts], padding_side="left")


def _padded_ids(ad, inputs, new: int) -> torch.Tensor:
    out = ad.model.generate(**inputs, do_sample=False, max_new_tokens=new, pad_token_id=ad.pad_token_id,
                            temperature=None, top_p=None, top_k=None)  # fmt: skip
    return out[:, inputs["input_ids"].shape[1] :]


# ----------------------------------------------------------------------------------------------- the layout
def _left_padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :], mask[i, width - len(r) :] = torch.tensor(r), 1
    return ids, mask


@pytest.mark.parametrize(("drop_last", "extra"), [(0, []), (1, []), (0, [91, 92])])
def test_plan_puts_every_token_back_in_the_left_padded_layout(drop_last: int, extra: list[int]) -> None:
    g = torch.Generator().manual_seed(0)
    prefix = torch.randint(10, 90, (MIN_PREFIX + 3,), generator=g).tolist()
    rows = [prefix + torch.randint(10, 90, (n,), generator=g).tolist() for n in (5, 17, 2, 9)]
    rows[2][len(prefix)] = rows[0][len(prefix)] + 1  # the rows differ right after the prefix
    ids, mask = _left_padded(rows)
    plan = _plan(ids, mask, drop_last, torch.tensor(extra, dtype=torch.long), share=True)
    assert plan.prefix.tolist() == prefix
    want = [r[: len(r) - drop_last] + extra for r in rows]
    assert plan.lengths.tolist() == [len(w) for w in want]
    # Cache rows are [prefix, packed]: gathering them gives each prompt, left-padded; positions restart per prompt.
    cache_rows = torch.cat([plan.prefix, plan.tokens])
    rebuilt, rebuilt_mask = _left_padded(want)
    assert torch.equal(torch.where(plan.mask, cache_rows[plan.gather], 0), rebuilt)
    assert torch.equal(plan.mask.long(), rebuilt_mask)
    seg = plan.segments
    assert seg.cu_q.tolist() == [0, *torch.tensor([len(w) - len(prefix) for w in want]).cumsum(0).tolist()]
    assert plan.positions.tolist() == [j for w in want for j in range(len(prefix), len(w))]
    for b, w in enumerate(want):  # each key segment: the prefix then the prompt's own tokens
        keys = cache_rows[seg.index_k[seg.cu_k[b] : seg.cu_k[b + 1]]]
        assert keys.tolist() == w
    assert seg.max_q == max(len(w) for w in want) - len(prefix) and seg.max_k == max(len(w) for w in want)


def test_a_short_shared_prefix_is_not_split_off() -> None:
    ids, mask = _left_padded([[5, 6, 7, 8], [5, 6, 9], [5, 6, 7, 1, 2]])
    plan = _plan(ids, mask, 0, None, share=True)
    assert plan.prefix.numel() == 0 and plan.segments.index_k is None
    assert plan.tokens.tolist() == [5, 6, 7, 8, 5, 6, 9, 5, 6, 7, 1, 2]
    assert plan.positions.tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4]


def test_right_padded_prompts_are_refused() -> None:
    ids, mask = _left_padded([[5, 6, 7], [5, 6]])
    with pytest.raises(ValueError, match="left-padded"):
        _plan(ids.flip(1), mask.flip(1), 0, None, share=True)


def test_reference_attention_aligns_causal_masking_bottom_right() -> None:
    """Queries of a segment with more keys than queries (the prefix) see the prefix and their own past: the last rows
    of full causal attention over prefix + prompt."""
    g = torch.Generator().manual_seed(0)
    p, lens = 6, [3, 7, 1]
    full = [(torch.randn(p + n, 4, 8, generator=g), torch.randn(p + n, 2, 8, generator=g),
             torch.randn(p + n, 2, 8, generator=g)) for n in lens]  # fmt: skip
    q = torch.cat([f[0][p:] for f in full])
    k, v = torch.cat([f[1] for f in full]), torch.cat([f[2] for f in full])
    cu_q = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()])
    cu_k = torch.tensor([0, *(torch.tensor(lens) + p).cumsum(0).tolist()])
    out = varlen_reference(q, k, v, cu_q, cu_k, 0.3)
    want = []
    for fq, fk, fv in full:
        o = torch.nn.functional.scaled_dot_product_attention(
            fq.transpose(0, 1)[None], fk.transpose(0, 1)[None], fv.transpose(0, 1)[None], is_causal=True,
            scale=0.3, enable_gqa=True,
        )  # fmt: skip
        want.append(o[0].transpose(0, 1)[p:])
    torch.testing.assert_close(out, torch.cat(want))


# ----------------------------------------------------------------------------------------------- the two modes
def test_scoring_runs_every_forward_without_autograd(tok) -> None:
    """Both modes, packed or padded, run every forward under inference mode (``generate`` alone would give
    ``no_grad``; the packed prefill is a plain forward)."""
    ad = _adapter(tok, "llama")
    inputs = _inputs(ad)
    seen: list[bool] = []
    hook = ad.model.register_forward_pre_hook(lambda *_: seen.append(torch.is_inference_mode_enabled()))
    try:
        generate_answers(ad, inputs, max_new_tokens=2, prefill=ON)
        generate_answers(ad, inputs, max_new_tokens=2)
        rank_scores(ad, inputs, candidate_token_ids(ad, ["intent: joke", "intent: thank"]), prefill=ON)
    finally:
        hook.remove()
    assert seen and all(seen)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_generate_gives_the_padded_paths_tokens(tok, family: str, share: bool) -> None:
    ad = _adapter(tok, family)
    inputs = _inputs(ad)
    prefill = dataclasses.replace(ON, share_prefix=share)
    assert _plan(inputs["input_ids"], inputs["attention_mask"], 1, None, share).prefix.numel() == (26 if share else 0)
    packed = packed_generate(ad, inputs, prefill, max_new_tokens=8)
    assert torch.equal(packed, _padded_ids(ad, inputs, 8))
    assert generate_answers(ad, inputs, max_new_tokens=8, prefill=prefill) == generate_answers(
        ad, inputs, max_new_tokens=8
    )


def test_generate_stops_at_eos_like_the_padded_path(tok) -> None:
    ad = _adapter(tok, "llama", seed=2)
    trigger = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"][-1]
    target = tok(build_target(get_task("mintrec"), "joke"), add_special_tokens=False)["input_ids"]
    rig_to_answer(ad.model, target, trigger, tok.eos_token_id)
    inputs = _inputs(ad)
    packed = packed_generate(ad, inputs, ON, max_new_tokens=16)
    assert packed.shape[1] == len(target) + 1 < 16  # stopped at EOS
    assert torch.equal(packed, _padded_ids(ad, inputs, 16))
    assert generate_answers(ad, inputs, prefill=ON) == ["intent: joke"] * len(TEXTS)


@pytest.mark.parametrize("texts", [TEXTS[:2] * 2 + ["ok"], ["ok"] * 3], ids=["duplicates", "identical"])
def test_repeated_prompts_keep_the_kept_positions_out_of_the_prefix(tok, texts: list[str]) -> None:
    """Identical prompts share all their tokens: the prefix stops where each row still holds the positions whose
    logits are kept (rank: the prompt's last token and the shared target tokens) and one token to prefill."""
    ad = _adapter(tok, "qwen2", seed=1)
    inputs = _inputs(ad, "mintrec", texts)
    t = get_task("mintrec")
    cands = candidate_token_ids(ad, [build_target(t, lab) for lab in t.labels])
    torch.testing.assert_close(rank_scores(ad, inputs, cands, prefill=ON), rank_scores(ad, inputs, cands),
                               atol=1e-5, rtol=1e-5)  # fmt: skip
    assert torch.equal(packed_generate(ad, inputs, ON, max_new_tokens=5), _padded_ids(ad, inputs, 5))


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize(("family", "task"), [("llama", "mintrec"), ("qwen2", "mintrec"), ("qwen2", "mosi")])
def test_rank_scores_match_the_padded_path(tok, family: str, task: str, share: bool) -> None:
    ad = _adapter(tok, family, seed=1)
    inputs = _inputs(ad, task)
    t = get_task(task)
    cands = candidate_token_ids(ad, [build_target(t, lab) for lab in t.labels])
    padded = rank_scores(ad, inputs, cands)
    prefill = dataclasses.replace(ON, share_prefix=share)
    for max_rows in (1024, 7):  # the label expansion in one go and in pieces
        packed = rank_scores(ad, inputs, cands, max_rows=max_rows, prefill=prefill)
        torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(padded, rank_scores(_adapter(tok, family, seed=5), inputs, cands, prefill=prefill))


def test_a_lora_model_is_prefilled_packed_like_padded(tok) -> None:
    from peft import LoraConfig, get_peft_model

    ad = _adapter(tok, "qwen2", seed=3)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    ad = CausalLMAdapter(model=get_peft_model(ad.model, lora).eval(), processor=tok, model_id="tiny/lora")
    assert resolve_prefill(ad, "on").packed
    inputs = _inputs(ad)
    t = get_task("mintrec")
    cands = candidate_token_ids(ad, [build_target(t, lab) for lab in t.labels])
    torch.testing.assert_close(rank_scores(ad, inputs, cands, prefill=ON), rank_scores(ad, inputs, cands),
                               atol=1e-5, rtol=1e-5)  # fmt: skip
    assert torch.equal(packed_generate(ad, inputs, ON, max_new_tokens=6), _padded_ids(ad, inputs, 6))


def _fake_new_api(q, k, v, cu_q, cu_k, max_q, max_k, *, return_aux=None, scale=None, window_size=(-1, -1),
                  enable_gqa=False, seqused_k=None, block_table=None, num_splits=None):  # type: ignore[no-untyped-def]  # fmt: skip
    """torch >= 2.12's signature, computed by the per-segment SDPA reference (for CPU)."""
    assert window_size == (-1, 0) and enable_gqa == (q.shape[1] != k.shape[1])
    assert cu_q.dtype == cu_k.dtype == torch.int32 and int(cu_k.diff().max()) == max_k
    return varlen_reference(q, k, v, cu_q, cu_k, scale)


def _fake_old_api(q, k, v, cu_q, cu_k, max_q, max_k, is_causal=False, return_aux=None):  # type: ignore[no-untyped-def]
    """torch 2.10's signature (no scale: 1/sqrt(D); no enable_gqa)."""
    assert is_causal and int(cu_q.diff().max()) == max_q
    return varlen_reference(q, k, v, cu_q, cu_k, None)


@pytest.mark.parametrize("api", [_fake_new_api, _fake_old_api])
def test_kernel_path_speaks_each_torch_api(tok, api, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import torch.nn.attention.varlen as varlen_mod

    monkeypatch.setattr(varlen_mod, "varlen_attn", api)
    ad = _adapter(tok, "qwen2", seed=4)
    inputs = _inputs(ad)
    t = get_task("mintrec")
    cands = candidate_token_ids(ad, [build_target(t, lab) for lab in t.labels])
    kernel = Prefill("on", packed=True, kernel=KERNEL)
    torch.testing.assert_close(rank_scores(ad, inputs, cands, prefill=kernel), rank_scores(ad, inputs, cands),
                               atol=1e-5, rtol=1e-5)  # fmt: skip


@pytest.mark.skipif(kernel_unavailable_reason(torch.bfloat16, "cuda") is not None, reason="needs CUDA with varlen_attn")
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_varlen_kernel_matches_the_padded_path_bf16(tok, family: str) -> None:
    """The real kernel on the GPU, bf16: rank scores within bf16 noise, with a shared prefix (bottom-right causal)."""
    ad = _adapter(tok, family, seed=1)
    ad.model.to("cuda", torch.bfloat16)
    prefill = resolve_prefill(ad, "auto")
    assert prefill.packed and prefill.kernel == KERNEL
    inputs = _inputs(ad)
    t = get_task("mintrec")
    cands = candidate_token_ids(ad, [build_target(t, lab) for lab in t.labels])
    padded = rank_scores(ad, inputs, cands)
    torch.testing.assert_close(rank_scores(ad, inputs, cands, prefill=prefill), padded, atol=0.15, rtol=0.02)
    no_prefix = dataclasses.replace(prefill, share_prefix=False)
    torch.testing.assert_close(rank_scores(ad, inputs, cands, prefill=no_prefix), padded, atol=0.15, rtol=0.02)


# ----------------------------------------------------------------------------------------------- choosing
def test_resolve_prefill_by_setting_model_and_machine(tok) -> None:
    ad = _adapter(tok, "llama")
    assert not resolve_prefill(ad, "off").packed
    auto = resolve_prefill(ad, "auto")
    if kernel_unavailable_reason(ad.model.dtype, ad.device) is not None:  # CPU, fp32: the kernel cannot run
        assert not auto.packed and auto.describe() == "padded" and "CUDA" in auto.reason
    on = resolve_prefill(ad, "on")
    assert on.packed and on.kernel == REFERENCE and on.describe() == "packed (SDPA reference)"
    with pytest.raises(ValueError, match=r"^--packed-prefill 'yes': choose one of auto, on, off$"):
        resolve_prefill(ad, "yes")
    vl = VisionLanguageAdapter(model=ad.model, processor=tok, model_id="tiny/vl")
    assert not resolve_prefill(vl, "auto").packed and "multimodal" in resolve_prefill(vl, "auto").reason
    with pytest.raises(ValueError, match=r"^--packed-prefill on: tiny/vl: .*multimodal.*auto or off$") as err:
        resolve_prefill(vl, "on")
    assert "\n" not in str(err.value)
    windowed = _adapter(tok, "qwen2")
    windowed.model.config.layer_types = ["sliding_attention", "full_attention"]
    assert "only full attention" in resolve_prefill(windowed, "auto").reason


def test_the_attention_implementation_is_restored(tok) -> None:
    ad = _adapter(tok, "llama")
    before = ad.model.config._attn_implementation
    with pytest.raises(KeyError), _attention(ad.model, REFERENCE):
        assert ad.model.config._attn_implementation == REFERENCE
        raise KeyError("boom")
    assert ad.model.config._attn_implementation == before


def test_packed_attention_refuses_a_padding_mask() -> None:
    q = torch.zeros(1, 4, 6, 8)
    seg = PackedSegments(torch.tensor([0, 6]), torch.tensor([0, 6]), 6, 6, None)
    with pytest.raises(RuntimeError, match="--packed-prefill off"):
        kernel_attention_forward(torch.nn.Module(), q, q, q, torch.ones(1, 1, 6, 6), mmla_packed=seg)
    with pytest.raises(RuntimeError, match="--packed-prefill off"):
        kernel_attention_forward(torch.nn.Module(), q, q, q, None)


@pytest.mark.parametrize("style", ["upstream", "upstream_sft", "paper"])
def test_real_prompts_share_a_36_token_prefix_with_smollm2(shared_data, style: str) -> None:
    """The measurement behind prefix sharing: SmolLM2's system turn and the fixed start of the instruction ("...the
    speaker says:") are the first 36 tokens of every real prompt of the five tasks, in all three prompt styles."""
    import json

    from transformers import AutoTokenizer

    from mmla.eval.adapters import resolve_model

    folder, gguf = resolve_model(None)
    smol = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    ad = CausalLMAdapter(model=tiny_llama(8), processor=smol, model_id="smollm2")
    msgs = []
    for key in ("mintrec", "meld", "iemocap", "mosi", "mustard"):
        lines = (shared_data / key / "validation.jsonl").read_text(encoding="utf-8").splitlines()[:40]
        msgs += [build_messages(get_task(key), json.loads(line)["text"], style=style) for line in lines]
    inputs = ad.build_inputs(msgs, padding_side="left")
    plan = _plan(inputs["input_ids"], inputs["attention_mask"], 0, None, share=True)
    assert plan.prefix.numel() == 36
    assert smol.decode(plan.prefix).endswith("You are presented with a video in which the speaker says:")
    real = int(inputs["attention_mask"].sum())
    assert 0.25 < 36 * len(msgs) / real < 0.36  # the share of prompt tokens computed once instead of per prompt
