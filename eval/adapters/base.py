"""The adapter contract: chat messages (+ frames) -> model inputs, nothing else.

A :class:`ModelAdapter` hides how one model family formats a chat and packs
video frames; the runner, the metrics and training never branch on a model name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from transformers import BatchEncoding, PreTrainedModel

logger = logging.getLogger(__name__)

Messages = list[dict[str, Any]]
VideoInput = Any
"""A :class:`~mmla.loaders.video.FrameSample` (frames + sampling metadata), bare ``uint8 (T, C, H, W)`` frames,
a file path or a ``{"path", "bytes"}`` dict."""

LM_LINEAR = "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj"
"""Attention and MLP projections of a Llama/Qwen-style decoder (every linear layer but ``lm_head``)."""


def split_clip(clip: VideoInput) -> tuple[Any, dict[str, Any] | None]:
    """``(frames, video_metadata)`` of one clip; only a ``FrameSample`` knows when its frames were taken.

    The metadata is in the shape of transformers' ``VideoMetadata`` (source ``fps``, ``frames_indices``,
    ``total_num_frames``, ``duration``), from which Qwen2.5-VL derives ``second_per_grid_ts`` and Qwen3-VL
    its ``<t seconds>`` prompt timestamps.
    """
    from mmla.loaders.video import FrameSample

    if not isinstance(clip, FrameSample):
        return clip, None
    metadata = clip.video_metadata()
    if not metadata.get("fps"):  # container without a frame rate: derive it from the duration, if known
        metadata["fps"] = clip.total_frames / clip.duration if clip.duration else None
    return clip.frames, metadata


def _flatten_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if block.get("type") == "text")


@dataclass
class ModelAdapter:
    """A loaded model and its tokenizer/processor, with the family's input building."""

    model: PreTrainedModel
    processor: Any
    model_id: str = ""
    use_chat_template: bool = True
    video_kwargs: dict[str, Any] = field(default_factory=dict)
    """Frame sampling for videos given as paths (``num_frames`` or ``fps``), forwarded to the processor."""

    is_multimodal: ClassVar[bool] = False
    model_types: ClassVar[tuple[str, ...]] = ()
    requires_remote_code: ClassVar[bool] = False
    shares_prompt_cache: ClassVar[bool] = True
    """Whether rank scoring may reuse the prompt's KV cache with explicit 1-D positions (not true for M-RoPE)."""
    lora_target_modules: ClassVar[str | tuple[str, ...]] = "all-linear"
    """PEFT ``target_modules`` for LoRA training: the language model's linear layers, never a vision tower.

    A string is a regex PEFT full-matches against module names (or PEFT's ``"all-linear"``), a tuple a list
    of module-name suffixes. Read through :func:`mmla.eval.adapters.lora_targets_for`.
    """

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def device(self) -> torch.device:
        return self.model.device

    # -- text -----------------------------------------------------------------------------------------
    def _check_template(self) -> None:
        has = getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)
        if self.use_chat_template and not has:
            raise ValueError(
                f"model {self.model_id!r} has no chat template; pass --no-chat-template "
                "(use_chat_template=False) to feed the raw prompt instead"
            )

    def prompt_text(self, messages: Messages, *, add_generation_prompt: bool = True) -> str:
        """The exact string the model sees (chat template applied, or the raw prompt)."""
        self._check_template()
        if not self.use_chat_template:
            parts = [_flatten_text(m["content"]) for m in messages]
            text = "\n".join(parts)
            return text + "\n" if add_generation_prompt else text
        owner = self.processor if getattr(self.processor, "chat_template", None) else self.tokenizer
        return owner.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def build_inputs(
        self,
        messages_list: Sequence[Messages],
        videos: Sequence[Sequence[VideoInput]] | None = None,
        *,
        add_generation_prompt: bool = True,
        padding_side: str = "left",
    ) -> BatchEncoding:
        """Tokenize a batch of chats; ``videos[i]`` holds the clips of chat ``i`` (text models take none)."""
        if not self.is_multimodal and videos is not None and any(len(v) for v in videos):
            raise ValueError(f"{type(self).__name__} ({self.model_id}) is a text-only model; run with --text-only")
        texts = [self.prompt_text(m, add_generation_prompt=add_generation_prompt) for m in messages_list]
        return self._encode(texts, videos, padding_side=padding_side)

    def _encode(
        self, texts: list[str], videos: Sequence[Sequence[VideoInput]] | None, *, padding_side: str
    ) -> BatchEncoding:
        """The family's part of :meth:`build_inputs`: the prompt strings (and each chat's clips) -> model inputs."""
        tok = self.tokenizer
        return tok(
            texts,
            padding=True,
            padding_side=padding_side,
            return_tensors="pt",
            add_special_tokens=not self.use_chat_template,
        )

    def decode(self, token_ids: torch.Tensor) -> list[str]:
        return self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)

    @property
    def pad_token_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id


class VisionLanguageAdapter(ModelAdapter):
    """Models whose processor takes ``text=`` and ``videos=`` (Qwen2-VL, LLaVA-OneVision, ...)."""

    is_multimodal: ClassVar[bool] = True
    shares_prompt_cache: ClassVar[bool] = False
    lora_target_modules: ClassVar[str | tuple[str, ...]] = rf".*language_model.*\.({LM_LINEAR})"
    """transformers' multimodal classes keep the decoder under ``language_model``; the vision tower and the
    projector (whose MLPs may share the decoder's layer names, as Qwen2.5-VL's do) stay frozen."""
    video_timing: ClassVar[bool] = False
    """Whether the processor turns frame times into model inputs (positions or prompt timestamps)."""

    def _processor_videos(self, clips: list[VideoInput]) -> tuple[list[Any], dict[str, Any]]:
        """The processor's ``videos`` and its video keyword arguments for a flat list of clips."""
        videos, metadata = map(list, zip(*(split_clip(c) for c in clips), strict=True))
        if all(isinstance(v, torch.Tensor) for v in videos):
            # Frames already sampled by mmla.loaders.video.sample_frames: keep them all, and say when they were
            # taken (without video_metadata transformers assumes 24 fps).
            kwargs: dict[str, Any] = {"do_sample_frames": False}
            if any(m is None for m in metadata) and self.video_timing and not getattr(self, "_timing_warned", False):
                self._timing_warned = True
                logger.warning(
                    "%s: frames given without their sampling metadata; the processor assumes 24 fps "
                    "(pass FrameSample objects: sample_frames(..., return_metadata=True))",
                    self.model_id or type(self).__name__,
                )
            if any(m is not None for m in metadata):
                kwargs["video_metadata"] = [
                    m if m is not None else {"total_num_frames": len(v), "frames_indices": list(range(len(v)))}
                    for v, m in zip(videos, metadata, strict=True)
                ]
            return videos, kwargs
        if any(isinstance(v, torch.Tensor) for v in videos):
            raise ValueError("mix of decoded frames and video paths in one batch")
        if not self.video_kwargs:
            # Without num_frames/fps some processors (Qwen2-VL) would use every frame of the clip.
            return videos, {"do_sample_frames": True, "num_frames": 8}
        return videos, {"do_sample_frames": True, **self.video_kwargs}

    def _encode(
        self, texts: list[str], videos: Sequence[Sequence[VideoInput]] | None, *, padding_side: str
    ) -> BatchEncoding:
        flat = [v for clips in videos or [] for v in clips]
        kwargs: dict[str, Any] = {"padding": True, "padding_side": padding_side, "return_tensors": "pt"}
        if flat:
            kwargs["videos"], video_kwargs = self._processor_videos(flat)
            kwargs.update(video_kwargs)
        return self.processor(text=texts, **kwargs)
