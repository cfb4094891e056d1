"""InternLM2 / InternLM2.5 chat models: remote modelling code on the Hub, text only."""

from __future__ import annotations

from typing import ClassVar

from mmla.eval.adapters.causal_lm import CausalLMAdapter


class InternLM2Adapter(CausalLMAdapter):
    model_types: ClassVar[tuple[str, ...]] = ("internlm2",)
    requires_remote_code: ClassVar[bool] = True
    lora_target_modules: ClassVar[str | tuple[str, ...]] = ("wqkv", "wo", "w1", "w2", "w3")
    """InternLM2's own names for the attention (fused qkv, output) and SwiGLU projections."""
