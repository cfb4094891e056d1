"""MiniCPM-V-2.6 (remote code): a video is shown as a sequence of frame images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from transformers import BatchEncoding

from mmla.eval.adapters.base import LM_LINEAR, VideoInput, VisionLanguageAdapter, split_clip

IMAGE_PLACEHOLDER = "(<image>./</image>)"


class MiniCPMVAdapter(VisionLanguageAdapter):
    """MiniCPM-V's own processor takes images, so each clip becomes its frames, one placeholder each.

    This mirrors the model card's video recipe (frames as a list of images, ``use_image_id=False``).
    """

    model_types: ClassVar[tuple[str, ...]] = ("minicpmv",)
    requires_remote_code: ClassVar[bool] = True
    lora_target_modules: ClassVar[str | tuple[str, ...]] = rf"llm\..*\.({LM_LINEAR})"
    """The decoder is ``llm`` (a Qwen2 LM); ``vpm`` (SigLIP, with its own ``q_proj``...) and ``resampler`` stay
    frozen, as in OpenBMB's ``finetune_lora.sh``."""

    def _encode(
        self, texts: list[str], videos: Sequence[Sequence[VideoInput]] | None, *, padding_side: str
    ) -> BatchEncoding:
        from PIL import Image

        images: list[list[Any]] = []
        for i, text in enumerate(texts):
            clips = list(videos[i]) if videos else []
            frames = []
            for clip in clips:
                clip, _ = split_clip(clip)  # frames are shown as images: their times are not used
                if not isinstance(clip, torch.Tensor):
                    raise ValueError("MiniCPM-V needs decoded frames (run with --num-frames/--fps)")
                frames.extend(Image.fromarray(f.permute(1, 2, 0).numpy()) for f in clip)
            # One image placeholder per frame where the chat had one video block per clip.
            texts[i] = text.replace("<video>", IMAGE_PLACEHOLDER * (len(frames) // max(len(clips), 1)))
            images.append(frames)
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if any(images):
            kwargs.update(images=images, use_image_id=False, max_slice_nums=1)
        self.tokenizer.padding_side = padding_side
        return self.processor(text=texts, **kwargs)
