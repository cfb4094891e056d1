"""Skip PEFT's LoRA input casts where autocast undoes them.

PEFT keeps LoRA weights in float32 and casts each LoRA layer's input to float32 before ``lora_A``. Under BF16/FP16
autocast (the Trainer's mixed precision) the matmul then casts that input straight back to half precision: two
activation-sized copies per LoRA layer per pass (and two more in backward) that change no value. The profile of a
Qwen2-7B-shaped LoRA step put these copies at about a sixth of the GPU time. PEFT exposes the switch
(``cast_input_dtype_enabled``, the flag behind ``peft.helpers.disable_input_dtype_casting``); this module sets it
for each forward of the model from the autocast state at that moment, so a forward outside autocast (generation
in a callback, evaluation) still casts.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["skip_lora_input_casts_under_autocast"]


def _plain_lora_linears(model: torch.nn.Module) -> list[Any]:
    """LoRA ``Linear`` layers without a variant (DoRA's magnitude math is not autocast's to cast)."""
    from peft.tuners.lora import Linear

    return [m for m in model.modules() if isinstance(m, Linear) and not any(m.use_dora.values())]


def skip_lora_input_casts_under_autocast(model: torch.nn.Module) -> int:
    """Install the switch on ``model`` (a ``PeftModel`` or the model it wraps); returns how many LoRA layers it covers
    (0: none to cover, nothing installed).

    The hook sits on the innermost model, whose forward runs inside the autocast that accelerate wraps around the
    outer ``forward``, so it sees the autocast state of the very pass it prepares.
    """
    layers = _plain_lora_linears(model)
    if not layers:
        return 0
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    first = layers[0].lora_A  # a ModuleDict; its weight's device is read per pass (the Trainer moves the model)

    def set_casts(module: torch.nn.Module, args: Any) -> None:
        cast = not torch.is_autocast_enabled(next(iter(first.values())).weight.device.type)
        for layer in layers:
            layer.cast_input_dtype_enabled = cast

    inner.register_forward_pre_hook(set_casts)
    return len(layers)
