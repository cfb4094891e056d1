"""Scoring samples in length-sorted batches, with out-of-memory back-off.

Samples are sorted longest first (generate mode: across tasks; rank mode: grouped by task, since a batch
shares one label set), so batches carry little padding and an out-of-memory error shows on the first batch.
On such an error (``accelerate.utils.should_reduce_batch_size``) the batch is retried at half the size, as
``accelerate.utils.find_executable_batch_size`` does for a whole function, and the smaller size is kept.
Text models' batches are prefilled packed, without padding, where the varlen kernel runs (:mod:`mmla.eval.packed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.profiler import record_function

from mmla.eval.adapters.base import ModelAdapter
from mmla.eval.cache import PredictionWriter
from mmla.eval.parsing import parse_answer
from mmla.eval.prompts import build_target
from mmla.eval.samples import SKIPPED, EvalSettings, Sample
from mmla.loaders.video import FrameSample

if TYPE_CHECKING:
    from mmla.eval.packed import Prefill

__all__ = ["score_samples"]

logger = logging.getLogger(__name__)


class BadVideo(RuntimeError):
    pass


def _frames(sample: Sample, settings: EvalSettings) -> FrameSample:
    """Frames with their sampling metadata: processors that encode time (Qwen2.5-VL, Qwen3-VL) need the real fps."""
    from mmla.loaders.video import sample_frames

    try:
        video = sample.ds[sample.index]["video"]
        if video is None:
            raise ValueError("no video")
        return sample_frames(video, num_frames=settings.num_frames, fps=settings.fps, return_metadata=True)
    except Exception as err:
        raise BadVideo(f"task {sample.task.key}, sample {sample.id!r}: cannot decode its video ({err})") from err


def _audio(sample: Sample, settings: EvalSettings, sampling_rate: int) -> Any:
    """The clip's audio track at the processor's rate (silence for a clip without one, if allowed)."""
    from mmla.loaders.audio import sample_audio

    try:
        video = sample.ds[sample.index]["video"]
        if video is None:
            raise ValueError("no clip")
        return sample_audio(video, sampling_rate, allow_silent=settings.allow_silent, return_info=True)
    except Exception as err:
        raise BadVideo(f"task {sample.task.key}, sample {sample.id!r}: cannot decode its audio ({err})") from err


def _clip(sample: Sample, settings: EvalSettings, sampling_rate: int) -> Any:
    """What the model is shown of the sample's clip: frames, its audio track, or both (``AVClip``)."""
    shows = settings.shows
    if "audio" not in shows:
        return _frames(sample, settings)
    audio = _audio(sample, settings, sampling_rate)
    if audio.silent:
        logger.warning("task %s, sample %r: clip has no audio track; fed %.2f s of silence (--allow-silent)",
                       sample.task.key, sample.id, audio.duration)  # fmt: skip
    if "video" not in shows:
        return audio
    from mmla.loaders.audio import AVClip

    return AVClip(_frames(sample, settings), audio)


def _score_batch(
    adapter: ModelAdapter,
    batch: list[Sample],
    videos: list[list[Any]] | None,
    settings: EvalSettings,
    candidates: dict[str, list[list[int]]],
    parse_mode: str = "aliases",
    prefill: Prefill | None = None,
) -> list[dict[str, Any]]:
    """Score one batch; in generate mode it may mix tasks, in rank mode it holds one task (one label set)."""
    from mmla.eval.scoring import generate_answers, rank_scores

    with record_function("mmla.eval.build_inputs"):
        inputs = adapter.build_inputs([s.messages for s in batch], videos, padding_side="left")
    packed = {"prefill": prefill} if prefill is not None and prefill.packed else {}  # padded: the plain call
    rows = []
    if settings.mode == "generate":
        answers = generate_answers(adapter, inputs, max_new_tokens=settings.max_new_tokens, **packed)
        for s, ans in zip(batch, answers, strict=True):
            rows.append({"raw": ans, "pred": parse_answer(s.task, ans, parse_mode)})
    else:
        task = batch[0].task
        assert task is not None and all(s.task is task for s in batch)
        scores = rank_scores(adapter, inputs, candidates[task.key], **packed)
        for sc in scores.tolist():
            best = max(range(len(sc)), key=sc.__getitem__)
            rows.append(
                {
                    "raw": build_target(task, task.labels[best]),
                    "pred": task.labels[best],
                    "scores": {lab: round(v, 4) for lab, v in zip(task.labels, sc, strict=True)},
                }
            )
    return [{"id": s.id, "hash": s.hash, **row, "gold": s.gold} for s, row in zip(batch, rows, strict=True)]


def _decode_videos(
    batch: list[Sample], settings: EvalSettings, skip_bad: bool, sampling_rate: int = 16000
) -> tuple[list, list, list]:
    """(clips per sample, the samples that decoded, rows of skipped samples)."""
    videos, ok, skipped = [], [], []
    for s in batch:
        try:
            videos.append([_clip(s, settings, sampling_rate)])
            ok.append(s)
        except BadVideo as err:
            if not skip_bad:
                raise RuntimeError(f"{err}; pass --skip-bad to skip and record such samples") from None
            logger.warning("%s; skipped", err)
            skipped.append((s, {"id": s.id, "hash": s.hash, "raw": "", "pred": SKIPPED, "gold": s.gold}))
    return videos, ok, skipped


def _audio_rate(adapter: ModelAdapter) -> int:
    """The rate the adapter's audio feature extractor expects (16 kHz for Whisper-style ones)."""
    extractor = getattr(adapter.processor, "feature_extractor", None)
    return int(getattr(extractor, "sampling_rate", None) or 16000)


def score_samples(
    adapter: ModelAdapter,
    pending: list[Sample],
    settings: EvalSettings,
    batch_size: int,
    sink_for: Callable[[str], Path],
    *,
    skip_bad: bool,
    show_progress: bool,
    on_batch_end: Callable[[str, int], None] | None,
    parse_mode: str = "aliases",
    prefill: Prefill | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Score ``pending`` samples (of any tasks), appending each batch's rows to its task's file (``sink_for``).

    ``prefill``: how prompts are prefilled (:func:`mmla.eval.packed.resolve_prefill`; ``None``: its ``auto``,
    packed without padding where the CUDA varlen kernel runs for a text model, else padded).
    """
    from accelerate.utils.memory import clear_device_cache, should_reduce_batch_size
    from tqdm.auto import tqdm

    from mmla.eval.packed import resolve_prefill

    if prefill is None:
        prefill = resolve_prefill(adapter, "auto")

    candidates: dict[str, list[list[int]]] = {}
    if settings.mode == "rank":
        from mmla.eval.scoring import candidate_token_ids

        for task in {s.task.key: s.task for s in pending}.values():
            candidates[task.key] = candidate_token_ids(adapter, [build_target(task, lab) for lab in task.labels])
        pending = sorted(pending, key=lambda s: (s.task.key, -len(s.prompt)))
    else:
        pending = sorted(pending, key=lambda s: -len(s.prompt))
    out: dict[str, list[dict[str, Any]]] = {}
    bar = tqdm(total=len(pending), desc="mmla eval", unit="samples", disable=not show_progress, dynamic_ncols=True)
    pos, nbatch = 0, 0
    with PredictionWriter(sink_for) as writer:
        while pos < len(pending):
            batch = pending[pos : pos + batch_size]
            if settings.mode == "rank":
                batch = [s for s in batch if s.task is batch[0].task]
            # (sample, row) pairs: ids repeat across tasks in a mixed batch, so rows are routed by sample, not id.
            rows: list[tuple[Sample, dict[str, Any]]] = []
            videos, batch_ok = None, batch
            if not settings.text_only:
                videos, batch_ok, rows = _decode_videos(batch, settings, skip_bad, _audio_rate(adapter))
            try:
                if batch_ok:
                    scored = _score_batch(adapter, batch_ok, videos, settings, candidates, parse_mode, prefill)
                    for row, clips in zip(scored, videos or [], strict=False):  # recorded: fed silence
                        if any(getattr(getattr(c, "audio", c), "silent", False) for c in clips):
                            row["silent_audio"] = True
                    rows.extend(zip(batch_ok, scored, strict=True))
            except Exception as err:
                if not should_reduce_batch_size(err) or batch_size == 1:
                    raise
                batch_size = max(1, len(batch) // 2)
                logger.warning("out of memory on a batch of %d; retrying with batch size %d", len(batch), batch_size)
                clear_device_cache()
                continue
            for s, row in rows:
                writer.write(s.task.key, row)
                out.setdefault(s.task.key, []).append(row)
            writer.flush()
            pos += len(batch)
            nbatch += 1
            bar.update(len(batch))
            if on_batch_end is not None:
                on_batch_end(batch[0].task.key, nbatch)
    bar.close()
    return out
