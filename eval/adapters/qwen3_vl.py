"""Qwen3-VL with video: the processor writes each frame group's time (``<0.3 seconds>``) into the prompt."""

from __future__ import annotations

from typing import ClassVar

from mmla.eval.adapters.base import VisionLanguageAdapter


class Qwen3VLAdapter(VisionLanguageAdapter):
    """Qwen3-VL's processor replaces each ``<|video_pad|>`` with, per temporal patch of frames, a
    ``<t seconds>`` timestamp (from the clip's ``video_metadata``: ``frames_indices / fps``) followed by that
    patch's vision tokens. Positions are interleaved M-RoPE, so no 1-D prompt-cache reuse.
    """

    model_types: ClassVar[tuple[str, ...]] = ("qwen3_vl",)
    video_timing: ClassVar[bool] = True
