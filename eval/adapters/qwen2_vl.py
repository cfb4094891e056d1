"""Qwen2-VL / Qwen2.5-VL with video: ``<|vision_start|><|video_pad|><|vision_end|>`` per clip."""

from __future__ import annotations

from typing import ClassVar

from mmla.eval.adapters.base import VisionLanguageAdapter


class Qwen2VLAdapter(VisionLanguageAdapter):
    """Qwen2-VL's processor expands each video placeholder to ``prod(video_grid_thw) / merge**2`` tokens.

    Its M-RoPE positions depend on the video grid, so rank scoring does not reuse a 1-D positioned cache.
    Qwen2.5-VL also spaces the temporal positions by ``second_per_grid_ts = temporal_patch_size / fps``,
    which its processor computes from the clips' ``video_metadata``.
    """

    model_types: ClassVar[tuple[str, ...]] = ("qwen2_vl", "qwen2_5_vl")
    video_timing: ClassVar[bool] = True
