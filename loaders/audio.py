"""The audio track of a clip, over torchcodec's ``AudioDecoder`` (the decoder behind ``datasets.Audio``).

MMLA's clips are mp4 files with an AAC track; the same file gives frames (:mod:`mmla.loaders.video`) and
audio (here), so nothing is extracted or copied. :func:`sample_audio` returns what transformers' audio
feature extractors (Whisper's, used by Qwen2-Audio and Qwen2.5-Omni) take: a 1-D ``float32`` array in
[-1, 1] at ``sampling_rate``, channels averaged to mono, resampled by torchcodec (FFmpeg's resampler).

A clip without an audio track is an :class:`AudioDecodeError` naming it, or, with ``allow_silent=True``,
zeros for the clip's duration (``AudioSample.silent`` says so, and callers count it). A clip whose audio
cannot be decoded is always an error: nothing comes back silently empty.

``datasets.Audio`` decodes with the same ``AudioDecoder`` and accepts an mp4 path: :func:`add_audio_column`
gives a split an ``audio`` column pointing at its ``video`` files (the paths, never a copy of the bytes).
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


def has_audio(clip: Any) -> bool:
    """Whether the clip's container has an audio stream (reads the header only)."""
    from torchcodec.decoders import get_container_metadata

    src, name = _source(clip)
    try:
        meta = get_container_metadata(src)
    except Exception as err:
        raise AudioDecodeError(f"{name}: cannot open the clip ({_first_line(err)})") from err
    return any(s.media_type == "audio" for s in meta.streams)


def _first_line(err: BaseException) -> str:
    """The error's first line without torchcodec's ``function, file.cpp:line,`` prefix."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return re.sub(r"^\w+, \S+:\d+, ", "", line)


def _clip_seconds(src: Any, name: str) -> float:
    from torchcodec.decoders import VideoDecoder, get_container_metadata

    meta = get_container_metadata(src)
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


def add_audio_column(ds: Any, sampling_rate: int = DEFAULT_SAMPLING_RATE, *, column: str = "audio") -> Any:
    """``ds`` with a ``datasets.Audio`` column decoding the audio track of each row's ``video`` clip.

    The column holds the clips' paths (``datasets.Audio`` opens an mp4 with torchcodec's ``AudioDecoder``),
    so no audio is extracted and no video is copied. Clips embedded in Parquet (bytes, no path on disk)
    would have to be copied into the column: decode them with :func:`sample_audio` instead (a ``ValueError``
    says so).
    """
    import datasets

    if "video" not in ds.column_names:
        raise ValueError("the split has no 'video' column (text-only data); there is no audio to expose")
    raw = ds.cast_column("video", datasets.Video(decode=False))["video"]
    paths = []
    for i, value in enumerate(raw):
        path = (value or {}).get("path")
        if not path or (value or {}).get("bytes") is not None or not Path(path).is_file():
            raise ValueError(
                f"row {i}: its clip is embedded or not a local file ({path!r}); an Audio column would copy it, "
                "so decode its audio with mmla.loaders.audio.sample_audio(row['video'])"
            )
        paths.append(path)
    return ds.add_column(column, paths).cast_column(column, datasets.Audio(sampling_rate=sampling_rate))
