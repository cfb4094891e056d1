"""Audio-capable families: Qwen2.5-Omni / Qwen3-Omni (the thinker: text out) and Qwen2-Audio.

A clip reaches these adapters as a :class:`~mmla.loaders.audio.AVClip` (frames and the clip's own audio
track), a :class:`~mmla.loaders.video.FrameSample` (video only) or an
:class:`~mmla.loaders.audio.AudioSample` (audio only), as the run's ``--modalities`` asked. With both, the
Omni processor interleaves audio and video tokens in 2-second chunks (``load_audio_from_video``, the
model's ``use_audio_in_video``) and the model aligns their M-RoPE time positions.

Each chat is encoded on its own and the batch padded afterwards: the Omni processor takes one ``fps`` per
call, and the temporal positions (``video_second_per_grid``) and the audio/video interleaving depend on
each clip's real sampling rate of frames.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import BatchEncoding

from mmla.eval.adapters.base import VideoInput, VisionLanguageAdapter

__all__ = ["OmniAdapter", "Qwen2AudioAdapter"]

logger = logging.getLogger(__name__)


def _clip_parts(clip: Any) -> tuple[Any, Any]:
    """(frames or None, ``AudioSample`` / waveform or None) of one clip given to an audio family."""
    from mmla.loaders.audio import AudioSample, AVClip

    if isinstance(clip, AVClip):
        return clip.frames, clip.audio
    if isinstance(clip, AudioSample):
        return None, clip
    if isinstance(clip, np.ndarray) and clip.ndim == 1:
        return None, clip
    return clip, None


def _waveform(audio: Any) -> np.ndarray:
    return getattr(audio, "waveform", audio)


class OmniAdapter(VisionLanguageAdapter):
    """Qwen2.5-Omni and Qwen3-Omni thinkers: text, video and the clip's audio track.

    M-RoPE positions (time-aligned audio and video): rank scoring shares the prompt's cache across the labels
    and places their tokens after the prompt's positions (:meth:`continuation_positions`). LoRA targets the decoder under ``language_model``, never
    the audio tower (whose attention layers are also called ``q_proj``...) or the vision tower.
    """

    model_types: ClassVar[tuple[str, ...]] = (
        "qwen2_5_omni", "qwen2_5_omni_thinker", "qwen3_omni_moe", "qwen3_omni_moe_thinker",
    )  # fmt: skip
    modalities: ClassVar[tuple[str, ...]] = ("text", "video", "audio")
    """What the family can be shown; ``mmla eval --modalities`` picks a subset (default: all)."""
    video_timing: ClassVar[bool] = True
    model_class_names: ClassVar[dict[str, str]] = {
        "qwen2_5_omni": "Qwen2_5OmniThinkerForConditionalGeneration",
        "qwen3_omni_moe": "Qwen3OmniMoeThinkerForConditionalGeneration",
    }
    """A full Omni checkpoint (thinker + talker) loads its thinker only: text out, no speech synthesis."""

    shares_prompt_cache: ClassVar[bool] = True
    """Rank scoring runs the prompt (frames, audio) once and the labels on its cache, placed by
    :meth:`continuation_positions` after the prompt's M-RoPE positions."""

    def continuation_positions(self, text_positions: torch.Tensor, rows: slice, repeats: int) -> torch.Tensor:
        """M-RoPE positions of text tokens after the prompt just run: the 1-D count (non-pad tokens so far)
        plus the prompt's ``rope_deltas`` (its highest multimodal position minus its length), for the prompt
        rows ``rows`` each repeated ``repeats`` times; what ``generate`` uses for the answer's tokens."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        deltas = base.model.rope_deltas  # (batch, 1), set by the prompt's forward
        delta = deltas[rows].repeat_interleave(repeats, 0).to(text_positions.device)
        return (text_positions + delta).unsqueeze(0).expand(3, -1, -1)

    @classmethod
    def model_class(cls, model_type: str | None) -> Any:
        """The transformers class ``load_model`` instantiates, or None for ``AutoModelForImageTextToText``."""
        name = cls.model_class_names.get(model_type or "")
        if name is None:
            return None
        import transformers

        return getattr(transformers, name)

    def _audio_window(self) -> int | None:
        """Samples the feature extractor keeps (Whisper's 30 s), or None when it does not truncate (Qwen3-Omni)."""
        extractor = getattr(self.processor, "feature_extractor", None)
        if getattr(self.processor, "audio_kwargs", {}).get("truncation") is False or extractor is None:
            return None
        return getattr(extractor, "n_samples", None)

    def _check_window(self, audios: list[Any]) -> list[np.ndarray]:
        """The waveforms; a clip longer than the model's audio window is said once (the processor cuts it)."""
        window = self._audio_window()
        for audio in audios:
            n = len(_waveform(audio))
            if window and n > window and not getattr(self, "_window_warned", False):
                self._window_warned = True
                rate = getattr(getattr(self.processor, "feature_extractor", None), "sampling_rate", 16000)
                logger.warning("%s: %s has %.1f s of audio; the model hears its first %.0f s (its feature "
                               "extractor's window); further such clips are cut without a warning",
                               self.model_id or type(self).__name__, getattr(audio, "path", None) or "a clip",
                               n / rate, window / rate)  # fmt: skip
        return [_waveform(a) for a in audios]

    def _processor_call(self, text: str, frames: list[Any], waves: list[Any], paired: bool) -> BatchEncoding:
        waves = self._check_window(waves)
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if frames:
            kwargs["videos"], video_kwargs = self._processor_videos(frames)
            kwargs.update(video_kwargs)
            fps = [m.get("fps") for m in video_kwargs.get("video_metadata", [])]
            sampled = [len(f) / m["duration"] for f, m in zip(kwargs["videos"], video_kwargs.get("video_metadata", []),
                                                               strict=True) if m.get("duration")]  # fmt: skip
            if sampled:
                kwargs["fps"] = sampled[0]  # frames per second of this clip's sample: its temporal positions
            elif fps and fps[0]:
                kwargs["fps"] = fps[0]
            kwargs.pop("video_metadata", None)
        if waves:
            kwargs["audio"] = waves
            if paired:
                kwargs["load_audio_from_video"] = True
                kwargs["audio_from_video_indices"] = list(range(len(waves)))
        return self.processor(text=[text], **kwargs)

    def _encode(
        self, texts: list[str], videos: Sequence[Sequence[VideoInput]] | None, *, padding_side: str
    ) -> BatchEncoding:
        per_chat = []
        paired_any = False
        for i, text in enumerate(texts):
            clips = list(videos[i]) if videos is not None else []
            parts = [_clip_parts(c) for c in clips]
            frames = [f for f, _ in parts if f is not None]
            waves = [w for _, w in parts if w is not None]
            paired = bool(frames) and len(waves) == len(frames) == len(parts)
            if frames and waves and not paired:
                raise ValueError(f"{type(self).__name__}: a chat mixes clips with and without audio")
            if i and paired != paired_any:  # use_audio_in_video is one flag for the whole batch
                raise ValueError(f"{type(self).__name__}: a batch mixes clips with and without their audio")
            paired_any |= paired
            per_chat.append(self._processor_call(text, frames, waves, paired))
        batch = _merge(per_chat, pad_id=self.pad_token_id, padding_side=padding_side)
        if paired_any:
            batch["use_audio_in_video"] = True
        return batch


class Qwen2AudioAdapter(OmniAdapter):
    """Qwen2-Audio: text and the clip's audio track (no frames), for the audio + text ablation."""

    model_types: ClassVar[tuple[str, ...]] = ("qwen2_audio",)
    modalities: ClassVar[tuple[str, ...]] = ("text", "audio")
    video_timing: ClassVar[bool] = False
    model_class_names: ClassVar[dict[str, str]] = {"qwen2_audio": "Qwen2AudioForConditionalGeneration"}
    continuation_positions = None  # type: ignore[assignment]  # 1-D RoPE: the shared prompt cache as for text LLMs

    def _processor_call(self, text: str, frames: list[Any], waves: list[Any], paired: bool) -> BatchEncoding:
        waves = self._check_window(waves)
        if frames:
            raise ValueError(f"{self.model_id or 'Qwen2-Audio'} takes no video; run with --modalities text,audio")
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if waves:
            kwargs["audio"] = waves
            kwargs["sampling_rate"] = self.processor.feature_extractor.sampling_rate  # what sample_audio gave
        return self.processor(text=[text], **kwargs)


_CONCAT = ("pixel_values_videos", "pixel_values", "video_grid_thw", "image_grid_thw", "video_second_per_grid",
           "input_features", "feature_attention_mask", "audio_feature_lengths")  # fmt: skip
"""Per-clip tensors of a processor output: concatenated over the batch along their first dimension."""


def _merge(parts: list[Any], *, pad_id: int, padding_side: str) -> BatchEncoding:
    """One batch from single-chat processor outputs: token tensors padded, per-clip tensors concatenated."""
    width = max(p["input_ids"].shape[1] for p in parts)
    out: dict[str, Any] = {}
    for key, fill in (("input_ids", pad_id), ("attention_mask", 0)):
        rows = []
        for p in parts:
            row = p[key][0]
            pad = row.new_full((width - row.shape[0],), fill)
            rows.append(torch.cat([pad, row] if padding_side == "left" else [row, pad]))
        out[key] = torch.stack(rows)
    for key in _CONCAT:
        vals = [p[key] for p in parts if key in p and p[key] is not None]
        if vals:
            vals = [v if isinstance(v, torch.Tensor) else torch.as_tensor(v) for v in vals]
            if key == "input_features":  # Whisper features: pad the frame axis to the longest
                n = max(v.shape[-1] for v in vals)
                vals = [torch.nn.functional.pad(v, (0, n - v.shape[-1])) for v in vals]
            if key == "feature_attention_mask":
                n = max(v.shape[-1] for v in vals)
                vals = [torch.nn.functional.pad(v, (0, n - v.shape[-1])) for v in vals]
            out[key] = torch.cat(vals, 0)
    unknown = {k for p in parts for k in p} - set(out) - {"input_ids", "attention_mask"}
    if unknown:
        raise ValueError(f"cannot batch processor outputs {sorted(unknown)}")
    return BatchEncoding(out)
