"""Padding-free attention (mmla.training.attention), logits at answer positions, checkpointing by memory.

CPU: the varlen function with its SDPA stand-in (per-segment SDPA over ``cu_seqlens``) on padding-free batches gives
the loss and LoRA gradients of padded SDPA, fp32, tight tolerance. The CUDA kernel (``varlen_attn``, bf16) is
checked by ``test_varlen_kernel_matches_padded_sdpa_bf16`` where a GPU is there, and in ``bench/train_speed.py``.
"""

from __future__ import annotations

import pytest
import torch

from mmla.training.attention import (
    GIB,
    REFERENCE,
    VARLEN,
    activation_bytes_per_token,
    batch_tokens_bound,
    plan_checkpointing,
    register_varlen_attention,
    varlen_unavailable_reason,
)

LENGTHS = [(9, 3), (23, 4), (4, 2), (15, 3), (31, 5)]  # ragged (prompt, answer) token counts


def _config(family: str, vocab: int = 211):
    from transformers import LlamaConfig, Qwen2Config

    cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}[family]
    return cls(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False,
               pad_token_id=0)  # fmt: skip


def _rows(vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for p, a in LENGTHS:
        ids = torch.randint(3, vocab, (p + a,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * p + ids[p:]})
    return rows


def _lora_model(family: str, attn: str, dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """A tiny random model with LoRA r 8 on all linear layers; B initialised non-zero so every LoRA weight gets a
    gradient. Same seed, so every call gives the same weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_config(family), dtype=dtype, attn_implementation=attn).to(device)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False)
    torch.manual_seed(1)
    return get_peft_model(model, lora)


def _batch(padding_free: bool, device: str = "cpu") -> dict:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=padding_free)(_rows(211))
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def _loss_and_grads(model, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    batch = {k: v for k, v in batch.items() if k != "seq_idx"}
    loss = model(**batch, use_cache=False).loss
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_padding_free_reference_matches_padded_sdpa(family: str) -> None:
    """Same loss and LoRA gradients (fp32) from one padding-free row through the varlen function as from padded
    rows through SDPA; and the padding-free batch really holds no pad token."""
    name = register_varlen_attention(reference=True)
    assert name == REFERENCE
    padded, packed = _batch(False), _batch(True)
    n_real = sum(p + a for p, a in LENGTHS)
    assert packed["input_ids"].shape == (1, n_real) and padded["input_ids"].numel() > n_real
    assert packed["cu_seq_lens_q"].tolist() == [0, *torch.tensor([p + a for p, a in LENGTHS]).cumsum(0).tolist()]
    ref_loss, ref_grads = _loss_and_grads(_lora_model(family, "sdpa"), padded)
    loss, grads = _loss_and_grads(_lora_model(family, name), packed)
    assert torch.allclose(loss, ref_loss, rtol=1e-5, atol=1e-6), (loss, ref_loss)
    assert grads.keys() == ref_grads.keys() and len(grads) == 2 * 7 * 2  # A and B, 7 linear layers, 2 layers
    for key, g in grads.items():
        assert g.abs().sum() > 0, key
        torch.testing.assert_close(g, ref_grads[key], rtol=1e-4, atol=1e-6, msg=key)
    # Without the segments the same row is one causal sequence: a different loss, so the test can fail.
    leaky = {k: v for k, v in packed.items() if not k.startswith(("cu_seq", "max_length"))}
    leaky["position_ids"] = torch.arange(n_real)[None]
    wrong, wrong_grads = _loss_and_grads(_lora_model(family, name), leaky)
    assert (wrong - ref_loss).abs() > 10 * (1e-5 * ref_loss.abs() + 1e-6)
    assert not all(torch.allclose(g, ref_grads[k], rtol=1e-2, atol=1e-4) for k, g in wrong_grads.items())


def test_segments_from_position_ids_alone() -> None:
    """A packed row with position_ids only (no cu_seq_lens) is split at each position 0, as FlashAttention does."""
    name = register_varlen_attention(reference=True)
    packed = _batch(True)
    only_pos = {k: v for k, v in packed.items() if not k.startswith(("cu_seq", "max_length"))}
    model = _lora_model("llama", name)
    a, ga = _loss_and_grads(model, packed)
    b, gb = _loss_and_grads(model, only_pos)
    torch.testing.assert_close(a, b)
    for key in ga:
        torch.testing.assert_close(ga[key], gb[key])


def test_padded_batches_and_generation_fall_back_to_sdpa() -> None:
    """With a padding mask (eval, generation with a KV cache and left padding) the function is exactly SDPA."""
    name = register_varlen_attention(reference=True)
    padded = _batch(False)
    ref_loss, _ = _loss_and_grads(_lora_model("qwen2", "sdpa"), padded)
    loss, _ = _loss_and_grads(_lora_model("qwen2", name), padded)
    assert torch.equal(loss, ref_loss)
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]])
    mask = (ids != 0).long()
    outs = []
    for attn in ("sdpa", name):
        model = _lora_model("qwen2", attn).eval()
        with torch.no_grad():
            outs.append(model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                                       pad_token_id=0))  # fmt: skip
    assert torch.equal(outs[0], outs[1])


def test_unsupported_settings_are_one_line_errors() -> None:
    from mmla.training.attention import reference_attention_forward

    class Module:
        is_causal = True

    q = torch.randn(1, 4, 6, 8)
    kwargs = {"cu_seq_lens_q": torch.tensor([0, 2, 6]), "cu_seq_lens_k": torch.tensor([0, 2, 6]),
              "max_length_q": 4, "max_length_k": 4}  # fmt: skip
    with pytest.raises(ValueError, match=r"attention dropout 0\.1 is not supported"):
        reference_attention_forward(Module(), q, q, q, None, dropout=0.1, **kwargs)
    with pytest.raises(ValueError, match="full causal attention only"):
        reference_attention_forward(Module(), q, q, q, None, sliding_window=4, **kwargs)
    out, _ = reference_attention_forward(Module(), q, q, q, None, **kwargs)
    assert out.shape == (1, 6, 4, 8)


def _fake_new_api(q, k, v, cu_q, cu_k, max_q, max_k, *, return_aux=None, scale=None, window_size=(-1, -1),
                  enable_gqa=False, seqused_k=None, block_table=None, num_splits=None):  # type: ignore[no-untyped-def]  # fmt: skip
    """torch >= 2.12's signature, computed by the per-segment SDPA reference (for CPU)."""
    from mmla.training.attention import _varlen_reference

    assert window_size == (-1, 0) and enable_gqa == (q.shape[1] != k.shape[1])
    assert cu_q.dtype == torch.int32 and max(cu_q.diff().tolist()) == max_q
    return _varlen_reference(q, k, v, cu_q, cu_k, scale)


def _fake_old_api(q, k, v, cu_q, cu_k, max_q, max_k, is_causal=False, return_aux=None):  # type: ignore[no-untyped-def]
    """torch 2.10's signature (no scale: 1/sqrt(D); no enable_gqa: FlashAttention-2 takes fewer kv heads)."""
    from mmla.training.attention import _varlen_reference

    assert is_causal
    return _varlen_reference(q, k, v, cu_q, cu_k, None)


@pytest.mark.parametrize("api", [_fake_new_api, _fake_old_api])
def test_kernel_path_speaks_each_torch_api(api, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The kernel path (argument mapping, int32 segments, fp32 -> half cast, scale) with varlen_attn replaced by a
    CPU stand-in of each torch API: the same output as the reference, and the same loss through a bf16 model."""
    import torch.nn.attention.varlen as varlen_mod

    from mmla.training.attention import _varlen_kernel, _varlen_reference

    monkeypatch.setattr(varlen_mod, "varlen_attn", api)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(11, h, 8, generator=g, dtype=torch.bfloat16) for h in (4, 2, 2))
    cu = torch.tensor([0, 4, 11])
    torch.testing.assert_close(
        _varlen_kernel(None, q, k, v, cu, cu, 7, 7, None), _varlen_reference(q, k, v, cu, cu, None)
    )
    out = _varlen_kernel(None, q, k, v, cu, cu, 7, 7, 0.5)  # torch 2.10: q scaled in bf16 first (one more rounding)
    torch.testing.assert_close(out, _varlen_reference(q, k, v, cu, cu, 0.5), atol=1e-2, rtol=2e-2)
    assert not torch.allclose(out, _varlen_reference(q, k, v, cu, cu, None), atol=1e-2, rtol=2e-2)
    name = register_varlen_attention()
    packed = _batch(True)
    kernel, _ = _loss_and_grads(_lora_model("qwen2", name, torch.bfloat16), packed)
    ref, _ = _loss_and_grads(_lora_model("qwen2", register_varlen_attention(reference=True), torch.bfloat16), packed)
    assert torch.equal(kernel, ref)


def test_kernel_availability_is_explained() -> None:
    reason = varlen_unavailable_reason(torch.bfloat16)
    if not torch.cuda.is_available():
        assert reason is not None and ("CUDA" in reason or "varlen_attn" in reason)
    assert varlen_unavailable_reason("float32") is not None


@pytest.mark.skipif(varlen_unavailable_reason(torch.bfloat16) is not None, reason="needs CUDA with varlen_attn")
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_varlen_kernel_matches_padded_sdpa_bf16(family: str) -> None:
    """The real kernel, bf16 on the GPU: loss within 1% and LoRA gradients with cosine similarity > 0.99."""
    name = register_varlen_attention()
    assert name == VARLEN
    ref_loss, ref_grads = _loss_and_grads(_lora_model(family, "sdpa", torch.bfloat16, "cuda"), _batch(False, "cuda"))
    loss, grads = _loss_and_grads(_lora_model(family, name, torch.bfloat16, "cuda"), _batch(True, "cuda"))
    assert abs(loss.item() - ref_loss.item()) <= 1e-2 * abs(ref_loss.item())
    for key, g in grads.items():
        cos = torch.nn.functional.cosine_similarity(g.float().flatten(), ref_grads[key].float().flatten(), dim=0)
        assert cos > 0.99, (key, cos.item())


# ----------------------------------------------------------------------------------------------- logits at answers
@pytest.mark.parametrize("padding_free", [False, True])
def test_fused_head_scores_only_answer_positions(padding_free: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """TRL's fused LM head (what SFTTrainer's loss runs) projects only the positions with a label, without the
    (B, T, V) logits, and gives the full-logits loss and LoRA gradients."""
    import trl.trainer.utils as trl_utils

    name = register_varlen_attention(reference=True)
    attn = name if padding_free else "sdpa"
    batch = {k: v for k, v in _batch(padding_free).items() if k != "seq_idx"}
    ref_loss, ref_grads = _loss_and_grads(_lora_model("qwen2", attn), batch)

    projected: list[int] = []
    original = trl_utils._ChunkedLogProbFunction.apply

    def spy(hidden, *args):  # type: ignore[no-untyped-def]
        projected.append(hidden.shape[0])
        return original(hidden, *args)

    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: True)  # the CUDA path: answer positions only
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", spy)
    model = _lora_model("qwen2", attn)
    trl_utils.add_fused_lm_head(model.get_base_model(), outputs=("log_probs",))
    model.zero_grad()
    out = model(**batch, fused_lm_head=True, use_cache=False)
    assert out.logits is None if hasattr(out, "logits") else True
    out.loss.backward()
    assert projected == [sum(a for _, a in LENGTHS)]  # the answer tokens, not every position
    torch.testing.assert_close(out.loss.detach(), ref_loss, rtol=1e-5, atol=1e-6)
    for n, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, ref_grads[n], rtol=1e-4, atol=1e-6, msg=n)


# ----------------------------------------------------------------------------------------------- memory plan
def _qwen2_7b():
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4)  # fmt: skip


def test_checkpointing_plan_with_fake_numbers() -> None:
    cfg = _qwen2_7b()
    per_token = activation_bytes_per_token(cfg)
    assert 4e6 < per_token < 12e6  # a few MB per token for a 7B model (28 layers of 3584/18944)
    lengths = [100 + (i * 37) % 60 for i in range(1000)] + [223]  # MMLA-like rows: 100-159 tokens, one of 223
    padded = batch_tokens_bound(lengths, 32, padding_free=False)
    tokens = batch_tokens_bound(lengths, 32, padding_free=True)
    assert padded == 32 * 223 and 32 * 129 < tokens < padded  # random rows: mean + 6 sd, not 32 of the longest
    assert batch_tokens_bound([50, 60], 4, padding_free=True) == 4 * 60  # never above the padded bound
    roomy = plan_checkpointing(cfg, batch_tokens=tokens, free_bytes=60 * GIB)
    assert not roomy.checkpointing and "fit in 60.0 GiB" in roomy.reason
    tight = plan_checkpointing(cfg, batch_tokens=tokens, free_bytes=20 * GIB)
    assert tight.checkpointing and "do not fit" in tight.reason
    assert tight.activations_gib == roomy.activations_gib == round(per_token * tokens / GIB, 2)
    # LoRA dropout keeps a dropped copy of every LoRA input: more memory
    assert activation_bytes_per_token(cfg, lora_dropout=0.05) > per_token
    # The boundary: needed = activations * safety + reserve
    edge = int(roomy.needed_gib * GIB)
    assert not plan_checkpointing(cfg, batch_tokens=tokens, free_bytes=edge + GIB // 10).checkpointing
    assert plan_checkpointing(cfg, batch_tokens=tokens, free_bytes=edge - GIB // 10).checkpointing


def test_configs_the_varlen_functions_cannot_take() -> None:
    from transformers import Qwen2Config

    from mmla.training.attention import config_unsupported_reason

    assert config_unsupported_reason(_config("llama")) is None and config_unsupported_reason(_qwen2_7b()) is None
    sliding = Qwen2Config(use_sliding_window=True, sliding_window=16, max_window_layers=0, num_hidden_layers=2)
    assert "sliding" in config_unsupported_reason(sliding)
    assert config_unsupported_reason(_config("qwen2").__class__(attention_dropout=0.1)) == "attention dropout 0.1"
