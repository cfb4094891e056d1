"""PEFT's LoRA input casts are skipped under autocast (same values, fewer copies) and kept outside it."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmla.training.lora_casts import skip_lora_input_casts_under_autocast
from mmla.training.testing import tiny_qwen2


class CountCopies(TorchDispatchMode):
    """Counts dtype conversions (``aten._to_copy``) dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is torch.ops.aten._to_copy.default:
            self.n += 1
        return func(*args, **(kwargs or {}))


def _lora(skip: bool, dora: bool = False):  # type: ignore[no-untyped-def]
    from peft import LoraConfig, get_peft_model

    base = tiny_qwen2(64, seed=3).to(torch.bfloat16).train()
    cfg = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, use_dora=dora)
    model = get_peft_model(base, cfg)  # LoRA weights stay float32 (PEFT's autocast_adapter_dtype)
    torch.manual_seed(0)
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    covered = skip_lora_input_casts_under_autocast(model) if skip else 0
    return model, covered


def _step(model, autocast: bool) -> tuple[torch.Tensor, list[torch.Tensor], int]:  # type: ignore[no-untyped-def]
    ids = torch.arange(2 * 12).view(2, 12) % 64
    counter = CountCopies()
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast), counter:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    return loss.detach(), grads, counter.n


def test_under_autocast_the_casts_are_skipped_with_the_same_values() -> None:
    ref, _ = _lora(skip=False)
    fast, covered = _lora(skip=True)
    assert covered == 2 * 7  # every LoRA linear of the 2 layers
    loss_a, grads_a, copies_a = _step(ref, autocast=True)
    loss_b, grads_b, copies_b = _step(fast, autocast=True)
    assert torch.equal(loss_a, loss_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True))
    # each LoRA layer's input went to float32 and back in forward, and its gradient likewise in backward
    assert copies_b < copies_a - 2 * covered, (copies_a, copies_b)


def test_outside_autocast_the_casts_stay() -> None:
    """A forward outside autocast (a callback's generation) needs the cast: bf16 input, fp32 LoRA weights."""
    ref, _ = _lora(skip=False)
    fast, _ = _lora(skip=True)
    _step(fast, autocast=True)  # an autocast pass first: the switch must turn back
    loss_a, grads_a, _ = _step(ref, autocast=False)
    fast.zero_grad()
    loss_b, grads_b, _ = _step(fast, autocast=False)
    assert torch.equal(loss_a, loss_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True))


def test_dora_layers_are_left_alone() -> None:
    assert _lora(skip=True, dora=True)[1] == 0
