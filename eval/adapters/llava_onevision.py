"""LLaVA-OneVision and LLaVA-Video (Qwen2 language model) through transformers' LLaVA-OneVision classes."""

from __future__ import annotations

from typing import ClassVar

from mmla.eval.adapters.base import VisionLanguageAdapter


class LlavaOnevisionAdapter(VisionLanguageAdapter):
    """The ``-hf`` conversions of LLaVA-OneVision / LLaVA-Video; one ``<video>`` token per clip."""

    model_types: ClassVar[tuple[str, ...]] = ("llava_onevision", "llava_next_video")
