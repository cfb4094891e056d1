"""Batch collation for video MLLMs (Qwen2-VL / Qwen2.5-VL, LLaVA-OneVision / LLaVA-Video) and audio families
(Qwen2.5-Omni / Qwen3-Omni thinkers: frames + the clip's audio track; Qwen2-Audio: the audio track alone).

TRL's built-in vision collator reads only ``image``/``images`` columns, so video SFT needs its own
collator (with ``remove_unused_columns=False`` and ``dataset_kwargs={"skip_prepare_dataset": True}``).
It reuses the eval adapter's :meth:`~mmla.eval.adapters.ModelAdapter.build_inputs`, so training sees the
very chat template, video placeholders and frame packing of evaluation, and masks everything but the
answer: labels are -100 on the prompt (system, user turn, video tokens, assistant header) and padding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


class VideoSFTCollator:
    """Prompt-completion rows with a ``video`` column -> processor inputs + answer-only labels.

    Frames are sampled with :func:`mmla.loaders.video.sample_frames` (``num_frames`` or ``fps``, at most
    ``max_pixels`` each) and handed to the processor as decoded frames, as zero-shot evaluation does, with
    their sampling metadata (source fps, frame indices), so Qwen2.5-VL's ``second_per_grid_ts`` and Qwen3-VL's
    prompt timestamps are those of the real clip, not of transformers' 24 fps default.
    """

    def __init__(
        self,
        adapter: Any,
        *,
        num_frames: int | None = 8,
        fps: float | None = None,
        max_pixels: int | None = None,
        modalities: Sequence[str] | None = None,
        allow_silent: bool = False,
    ) -> None:
        if num_frames is not None and fps is not None:
            raise ValueError("pass num_frames or fps, not both")
        self.adapter = adapter
        self.frame_kwargs = {"num_frames": num_frames if fps is None else None, "fps": fps, "max_pixels": max_pixels}
        self._suffix_ok = True
        supported = tuple(getattr(adapter, "modalities", None) or ("text", "video"))
        self.modalities = tuple(modalities) if modalities is not None else supported
        """What training shows: by default all the family takes (as evaluation does), so Omni trains with audio."""
        missing = [m for m in self.modalities if m not in supported]
        if missing:
            raise ValueError(f"{type(adapter).__name__} takes {','.join(supported)}; it cannot be shown "
                             f"{','.join(missing)}")  # fmt: skip
        self.allow_silent = allow_silent

    def _frames(self, row: dict[str, Any]) -> list[Any]:
        """The row's clip as the model is shown it: frames, its audio track (``AudioSample``), or both (``AVClip``)."""
        video = row.get("video")
        if video is None:
            return []
        from mmla.loaders.video import sample_frames

        if "audio" not in self.modalities:
            return [sample_frames(video, **self.frame_kwargs, return_metadata=True)]
        from mmla.loaders.audio import AVClip, sample_audio

        extractor = getattr(self.adapter.processor, "feature_extractor", None)
        rate = int(getattr(extractor, "sampling_rate", None) or 16000)
        audio = sample_audio(video, rate, allow_silent=self.allow_silent, return_info=True)
        if "video" not in self.modalities:
            return [audio]
        return [AVClip(sample_frames(video, **self.frame_kwargs, return_metadata=True), audio)]

    def _messages(self, messages: Any) -> Any:
        """Video placeholders become audio ones when the clip is shown as its audio track alone."""
        if "video" in self.modalities or "audio" not in self.modalities:
            return messages
        from mmla.eval.samples import video_blocks_to_audio

        return video_blocks_to_audio(messages)

    def _answer_ids(self, prompt_text: str, full_text: str) -> list[int] | None:
        """Token ids of the answer (completion + end of turn) as they appear at the end of the full sequence."""
        if not full_text.startswith(prompt_text):
            return None
        suffix = full_text[len(prompt_text) :]
        return self.adapter.tokenizer(suffix, add_special_tokens=False)["input_ids"]

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        adapter = self.adapter
        prompts = [self._messages(row["prompt"]) for row in rows]
        fulls = [self._messages(row["prompt"] + row["completion"]) for row in rows]
        videos = [self._frames(row) for row in rows]
        has_video = any(videos)
        batch = adapter.build_inputs(
            fulls, videos if has_video else None, add_generation_prompt=False, padding_side="right"
        )
        input_ids = batch["input_ids"]
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        prompt_lengths: list[int] | None = []
        for i, (prompt, full) in enumerate(zip(prompts, fulls, strict=True)):
            answer = self._answer_ids(
                adapter.prompt_text(prompt, add_generation_prompt=True),
                adapter.prompt_text(full, add_generation_prompt=False),
            )
            n = lengths[i]
            if answer and input_ids[i, n - len(answer) : n].tolist() == answer:
                prompt_lengths.append(n - len(answer))
            else:
                prompt_lengths = None  # tokenization not separable at the prompt/answer boundary
                break
        if prompt_lengths is None:
            # Exact fallback: run the processor on the prompts as well (costs a second video preprocessing).
            if self._suffix_ok:
                logger.info("answer span not separable by suffix tokenization; measuring prompts instead")
                self._suffix_ok = False
            prompt_batch = adapter.build_inputs(
                prompts, videos if has_video else None, add_generation_prompt=True, padding_side="right"
            )
            prompt_lengths = prompt_batch["attention_mask"].sum(dim=1).tolist()
        for i, (start, end) in enumerate(zip(prompt_lengths, lengths, strict=True)):
            labels[i, start:end] = input_ids[i, start:end]
        batch["labels"] = labels
        return dict(batch)
