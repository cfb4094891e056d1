"""Any text causal LM with a chat template (Llama, Qwen2, SmolLM2, Mistral, a GGUF file, ...)."""

from __future__ import annotations

from typing import ClassVar

from mmla.eval.adapters.base import ModelAdapter


class CausalLMAdapter(ModelAdapter):
    """The fallback for every ``AutoModelForCausalLM`` architecture; the video is never shown."""

    model_types: ClassVar[tuple[str, ...]] = ()  # chosen when no other family claims the model_type
