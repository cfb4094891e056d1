"""The audio track of a clip, over torchcodec's ``AudioDecoder`` (the decoder behind ``datasets.Audio``).

MMLA's clips are mp4 files with an AAC track; the same file gives frames (:mod:`mmla.loaders.video`) and
audio (here), so nothing is extracted or copied. :func:`sample_audio` returns what transformers' audio
feature extractors (Whisper's, used by Qwen2-Audio and Qwen2.5-Omni) take: a 1-D ``float32`` array in
[-1, 1] at ``sampling_rate``, channels averaged to mono, resampled by torchcodec (FFmpeg's resampler).

A clip without an audio track is an :class:`AudioDecodeError` naming it, or, with ``allow_silent=True``,
zeros for the clip's duration (``AudioSample.silent`` says so, and callers count it). A clip whose audio
cannot be decoded is always an error: nothing comes back silently empty.

``datasets.Audio`` decodes with the same ``AudioDecoder`` and accepts an mp4 (path or bytes): the builder's
``audio=True`` (:class:`mmla.loaders.builder.MMLAConfig`) stores each clip's path as its ``audio`` cell
(:func:`audio_cell`), and :func:`add_audio_column` gives a loaded split an ``audio`` column that shares the
``video`` column's Arrow storage, so neither copies the video nor extracts its audio.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_SAMPLING_RATE",
    "AVClip",
    "AudioDecodeError",
    "AudioSample",
    "add_audio_column",
    "audio_cell",
    "has_audio",
    "sample_audio",
]

DEFAULT_SAMPLING_RATE = 16000
"""What Whisper-style feature extractors (Qwen2-Audio, Qwen2.5-Omni, Qwen3-Omni) expect."""


class AudioDecodeError(RuntimeError):
    """A clip whose audio track is missing or cannot be decoded; the message names the clip."""


@dataclass
class AudioSample:
    """The decoded waveform and where it came from."""

    waveform: np.ndarray
    """1-D ``float32`` at ``sampling_rate``, mono."""
    sampling_rate: int
    source_rate: int | None
    """The track's own rate (``None`` for a silent stand-in)."""
    source_channels: int | None
    duration: float
    """Seconds returned (after ``max_seconds``)."""
    silent: bool = False
    """True when the clip has no audio track and ``allow_silent`` gave zeros instead."""
    path: str | None = None


@dataclass
class AVClip:
    """One clip's sampled frames (a :class:`~mmla.loaders.video.FrameSample`) and its audio track, for models
    that take both (Qwen2.5-Omni's ``use_audio_in_video``)."""

    frames: Any
    audio: AudioSample


def _source(clip: Any) -> tuple[Any, str]:
    """(what torchcodec opens, a name for messages) for a path, bytes, a ``{"path", "bytes"}`` dict or a
    ``datasets.Video`` value (a torchcodec ``VideoDecoder`` that remembers its file)."""
    encoded = getattr(clip, "_hf_encoded", None)  # datasets.Video's decoded value
    if encoded is not None:
        clip = encoded
    if isinstance(clip, dict):
        path, data = clip.get("path"), clip.get("bytes")
        if data is None and path is None:
            raise AudioDecodeError(f"clip dict has neither 'bytes' nor 'path': {sorted(clip)}")
        name = str(path or "<in-memory clip>")
        if data is not None:
            return bytes(data), name
        clip = path
    if isinstance(clip, (str, os.PathLike)):
        name = str(clip)
        if not Path(name).is_file():
            raise AudioDecodeError(f"{name}: clip file not found")
        return name, name
    if isinstance(clip, (bytes, bytearray)):
        return bytes(clip), "<in-memory clip>"
    raise TypeError(f"unsupported clip {type(clip).__name__}; pass a path, bytes, a {{'path', 'bytes'}} dict "
                    "or a datasets.Video value")  # fmt: skip


def _container_metadata(src: Any) -> Any:
    """torchcodec's container metadata (header only) of a path or bytes.

    ``torchcodec.decoders.get_container_metadata`` is public from torchcodec 0.14 on; with an older one (the
    GPU image pairs torch 2.11 with torchcodec 0.13) the same reader is ``torchcodec._core``'s, for files.
    """
    try:
        from torchcodec.decoders import get_container_metadata
    except ImportError:
        from torchcodec import _core

        if isinstance(src, bytes):
            import tempfile

            with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
                tmp.write(src)
                tmp.flush()
                return _core.get_container_metadata_from_header(tmp.name)
        return _core.get_container_metadata_from_header(src)
    return get_container_metadata(src)


def _is_audio(stream: Any) -> bool:
    media = getattr(stream, "media_type", None)  # torchcodec >= 0.14; before: the metadata class says it
    return media == "audio" if media is not None else type(stream).__name__.startswith("AudioStream")


def has_audio(clip: Any) -> bool:
    """Whether the clip's container has an audio stream (reads the header only)."""
    src, name = _source(clip)
    try:
        meta = _container_metadata(src)
    except Exception as err:
        raise AudioDecodeError(f"{name}: cannot open the clip ({_first_line(err)})") from err
    return any(_is_audio(s) for s in meta.streams)


def _first_line(err: BaseException) -> str:
    """The error's first line without torchcodec's ``function, file.cpp:line,`` prefix."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return re.sub(r"^\w+, \S+:\d+, ", "", line)


def _clip_seconds(src: Any, name: str) -> float:
    from torchcodec.decoders import VideoDecoder

    meta = _container_metadata(src)
    seconds = meta.duration_seconds_from_header
    if not seconds:
        try:
            seconds = VideoDecoder(src, seek_mode="approximate").metadata.duration_seconds
        except Exception:
            seconds = None
    if not seconds:
        raise AudioDecodeError(f"{name}: no audio track, and the clip's duration is unknown (cannot give silence)")
    return float(seconds)


def sample_audio(
    clip: Any,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    max_seconds: float | None = None,
    *,
    allow_silent: bool = False,
    return_info: bool = False,
) -> np.ndarray | AudioSample:
    """The clip's audio as a mono ``float32`` waveform at ``sampling_rate`` (first ``max_seconds`` only).

    ``clip``: a path, bytes, a ``{"path", "bytes"}`` dict or a ``datasets.Video`` value. Any source rate
    (8 kHz, 44.1 kHz, 48 kHz ...) is resampled by torchcodec; stereo is averaged. No audio track:
    :class:`AudioDecodeError`, or zeros of the clip's duration when ``allow_silent``. ``return_info``:
    an :class:`AudioSample` instead of the bare array.
    """
    from torchcodec.decoders import AudioDecoder

    if sampling_rate < 1:
        raise ValueError(f"sampling_rate must be >= 1 (got {sampling_rate})")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0 (got {max_seconds})")
    src, name = _source(clip)
    if not has_audio(src):
        if not allow_silent:
            raise AudioDecodeError(
                f"{name}: the clip has no audio track; evaluate without audio (--modalities text,video) "
                "or pass --allow-silent to feed silence"
            )
        seconds = _clip_seconds(src, name)
        if max_seconds is not None:
            seconds = min(seconds, max_seconds)
        wave = np.zeros(max(1, round(seconds * sampling_rate)), dtype=np.float32)
        info = AudioSample(wave, sampling_rate, None, None, len(wave) / sampling_rate, silent=True, path=name)
        return info if return_info else wave
    try:
        decoder = AudioDecoder(src, sample_rate=sampling_rate)
        samples = decoder.get_samples_played_in_range(0.0, max_seconds)
    except Exception as err:
        raise AudioDecodeError(f"{name}: cannot decode its audio track ({_first_line(err)})") from err
    data = samples.data
    if data.ndim != 2 or data.shape[-1] == 0:
        raise AudioDecodeError(f"{name}: its audio track decodes to no samples (damaged track)")
    wave = data.float().mean(0).numpy().astype(np.float32, copy=False)
    if max_seconds is not None:
        wave = wave[: round(max_seconds * sampling_rate)]
    if not np.isfinite(wave).all():
        raise AudioDecodeError(f"{name}: its audio track decodes to non-finite samples (damaged track)")
    meta = decoder.metadata
    info = AudioSample(wave, sampling_rate, meta.sample_rate, meta.num_channels, len(wave) / sampling_rate, path=name)
    return info if return_info else wave


def audio_cell(
    clip: str | os.PathLike,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    *,
    allow_silent: bool = False,
    verify: bool = True,
) -> tuple[Any, bool]:
    """``(value, silent)``: what a ``datasets.Audio`` cell holds for a clip file.

    A clip with an audio track: its path (the Audio feature decodes the mp4's track; nothing is copied);
    ``verify`` decodes the track once so that a damaged one fails here, naming the clip, and not when a row
    is read. No track: an :class:`AudioDecodeError` naming the clip, or with ``allow_silent`` zeros of the
    clip's duration (``{"array", "sampling_rate"}``, which ``datasets`` stores as a small WAV) and
    ``silent=True``, for the caller to report.
    """
    name = str(clip)
    if has_audio(name):
        if verify:
            sample_audio(name, sampling_rate)
        return name, False
    if not allow_silent:
        raise AudioDecodeError(f"{name}: the clip has no audio track; pass allow_silent=True for silence of its "
                               "length, or load without audio")  # fmt: skip
    info = sample_audio(name, sampling_rate, allow_silent=True, return_info=True)
    return {"array": info.waveform, "sampling_rate": sampling_rate}, True


def add_audio_column(
    ds: Any,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    *,
    column: str = "audio",
    allow_silent: bool = False,
    check: bool = True,
    silent: list[str] | None = None,
) -> Any:
    """``ds`` with a ``datasets.Audio`` column decoding the audio track of each row's ``video`` clip.

    The column is the ``video`` column's own Arrow storage (``{"bytes", "path"}``: a path on disk, or the
    clip embedded in a Hub Parquet shard) under the ``Audio`` feature, so no audio is extracted and no video
    is copied. ``check`` opens each clip's header: a clip without an audio track is an
    :class:`AudioDecodeError` naming it (row and clip), or with ``allow_silent`` that row's cell becomes
    silence of the clip's length and its name is appended to ``silent``. A path that is not a file is a
    ``FileNotFoundError`` naming the row.
    """
    import datasets
    import pyarrow as pa
    import pyarrow.compute as pc

    if "video" not in ds.column_names:
        raise ValueError("the split has no 'video' column (text-only data); there is no audio to expose")
    if column in ds.column_names:
        raise ValueError(f"the split already has a {column!r} column")
    if ds._indices is not None:  # a shuffled/selected view: the video column must be in row order
        ds = ds.flatten_indices()
    video = ds.data.column("video")  # chunked, as stored (memory-mapped): shared, not copied
    silence: dict[int, Any] = {}
    if check:
        paths, data = pc.struct_field(video, "path"), pc.struct_field(video, "bytes")
        embedded = pc.invert(pc.is_null(data))
        for i in range(len(video)):
            if embedded[i].as_py():
                src: Any = data[i].as_py()
                name = paths[i].as_py() or "<embedded clip>"
            else:
                src = name = paths[i].as_py()
                if not src or not Path(src).is_file():
                    raise FileNotFoundError(f"row {i}: its clip {src!r} is not a file; cannot expose its audio")
            if has_audio(src):
                continue
            if not allow_silent:
                raise AudioDecodeError(f"row {i}: {name}: the clip has no audio track; pass allow_silent=True "
                                       "for silence of its length, or load without audio")  # fmt: skip
            wave = sample_audio(src, sampling_rate, allow_silent=True)
            silence[i] = datasets.Audio().encode_example({"array": wave, "sampling_rate": sampling_rate})
            if silent is not None:
                silent.append(name)
    if silence:
        mask = pa.array([i in silence for i in range(len(video))])
        cells = pa.array([silence.get(i, {"bytes": None, "path": None}) for i in range(len(video))], video.type)
        video = pc.if_else(mask, cells, video)
    return ds.add_column(column, video, feature=datasets.Audio(sampling_rate=sampling_rate))
