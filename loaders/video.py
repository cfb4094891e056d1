"""Frame sampling over torchcodec, the decoder behind ``datasets.Video``.

``sample_frames`` picks ``num_frames`` uniformly over the clip, or one frame every ``1/fps``
seconds (capped, like qwen-vl-utils' ``fps`` mode), decodes only those frames, and resizes
them (aspect-preserving, never up) so that ``H * W <= max_pixels``. The returned tensor is
``uint8 (T, C, H, W)``; a clip with fewer frames than its container declares (cut short) is an error
(:func:`check_complete`), never a silently short sample. ``return_metadata=True`` also returns a :class:`FrameSample` with the
timestamps and sizes that video processors (Qwen2-VL ``fps``/``video_metadata``) need.

Speed (``bench/decode_bench.py``, ``docs/benchmarks.md``): all wanted frames go to torchcodec in one
sorted ``get_frames_at`` call, which decodes forward without re-seeking inside a GOP and jumps to the
next keyframe across GOPs, so a clip is decoded at most once. The resize runs on the ``uint8`` frames
(PyTorch's native antialiased bilinear uint8 kernel, within 1 level of the float result and ~30x faster).
``seek_mode="exact"`` stays: its scan is demux-only (a few ms per clip) and keeps indices exact for
variable-frame-rate or badly muxed files, where ``"approximate"`` can return neighbouring frames.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

DEFAULT_NUM_FRAMES = 8
MAX_FPS_FRAMES = 768  # qwen-vl-utils FPS_MAX_FRAMES


@dataclass
class FrameSample:
    """What was sampled: source metadata plus the chosen frame indices and timestamps (seconds)."""

    frames: torch.Tensor
    indices: list[int]
    timestamps: list[float]
    source_fps: float
    duration: float
    total_frames: int
    original_size: tuple[int, int]
    """(height, width) before resizing."""
    sampled_fps: float = field(default=0.0)
    """Frames per second of the sample (len / duration), what Qwen2-VL's processor calls ``fps``."""
    path: str | None = None

    def video_metadata(self) -> dict[str, Any]:
        """Keyword dict in the shape of transformers' ``VideoMetadata``."""
        return {
            "total_num_frames": self.total_frames,
            "fps": self.source_fps,
            "duration": self.duration,
            "frames_indices": self.indices,
            "height": self.original_size[0],
            "width": self.original_size[1],
        }


class VideoDecodeError(RuntimeError):
    """A clip that torchcodec cannot open or decode; the message names the file."""


def _describe(video: Any) -> str:
    if isinstance(video, (str, os.PathLike)):
        return str(video)
    if isinstance(video, dict):
        return str(video.get("path") or "<in-memory bytes>")
    return getattr(video, "_mmla_path", None) or type(video).__name__


def open_video(video: Any, *, num_threads: int = 1):
    """A torchcodec ``VideoDecoder`` from a decoder, a path, bytes, or a ``{"path", "bytes"}`` dict."""
    from torchcodec.decoders import VideoDecoder

    if isinstance(video, VideoDecoder):
        return video
    src: Any
    if isinstance(video, dict):
        src = video.get("bytes") or video.get("path")
        if src is None:
            raise VideoDecodeError(f"video dict has neither 'bytes' nor 'path': {sorted(video)}")
    elif isinstance(video, (str, os.PathLike)):
        src = str(video)
        if not Path(src).is_file():
            raise VideoDecodeError(f"{src}: video file not found")
    elif isinstance(video, (bytes, bytearray)):
        src = bytes(video)
    else:
        raise TypeError(f"unsupported video input {type(video).__name__}; pass a VideoDecoder, path, bytes or dict")
    try:
        return VideoDecoder(src, seek_mode="exact", num_ffmpeg_threads=num_threads)
    except Exception as err:
        raise VideoDecodeError(f"{_describe(video)}: cannot decode video ({err})") from err


def check_complete(dec: Any, name: str) -> None:
    """Raise :class:`VideoDecodeError` when fewer frames can be read than the container declares.

    A faststart mp4 (index at the front) that was cut short still opens, and without this check decodes
    silently short (4 of 10 frames for a half-cut clip). The scan of ``seek_mode="exact"`` counts the frames
    really present; the header says how many there should be. One frame of slack (1% for long clips) allows
    for muxers that count an extra frame. Decoders opened without a scan (``"approximate"``) are not checked.
    """
    md = dec.metadata
    declared, present = md.num_frames_from_header, md.num_frames_from_content
    if declared and present is not None:
        if declared - present > max(1, round(0.01 * declared)):
            fps = float(md.average_fps_from_header or md.average_fps or 0.0)
            seconds = f" ({present / fps:.2f} s of {declared / fps:.2f} s)" if fps else ""
            raise VideoDecodeError(
                f"{name}: truncated or damaged clip: only {present} of the {declared} frames its container "
                f"declares can be read{seconds}; download or extract it again"
            )
        return
    header_s, end_s = md.duration_seconds_from_header, md.end_stream_seconds_from_content
    fps = float(md.average_fps or 0.0)
    if header_s and end_s is not None and fps and header_s - end_s > max(2.0 / fps, 0.01 * header_s):
        raise VideoDecodeError(
            f"{name}: truncated or damaged clip: frames end at {end_s:.2f} s but its container declares "
            f"{header_s:.2f} s; download or extract it again"
        )


def clip_problem(path: str | os.PathLike) -> str | None:
    """None when the clip opens, has frames and is complete (:func:`check_complete`); else the reason, one line.

    For build-time checks: a clip cut short is reported here instead of being embedded and sampled short.
    """
    try:
        dec = open_video(path)
        check_complete(dec, str(path))
        if not dec.metadata.num_frames and not dec.metadata.duration_seconds:
            return "no decodable video frames"
    except VideoDecodeError as err:
        return str(err).removeprefix(f"{path}: ")
    return None


def fit_size(height: int, width: int, max_pixels: int | None, *, multiple: int = 2) -> tuple[int, int]:
    """Largest (h, w) with the same aspect ratio, h*w <= max_pixels, rounded down to ``multiple``; never upscales."""
    if not max_pixels or height * width <= max_pixels:
        return height, width
    scale = math.sqrt(max_pixels / (height * width))
    h = max(multiple, int(height * scale) // multiple * multiple)
    w = max(multiple, int(width * scale) // multiple * multiple)
    return h, w


def _indices(total: int, duration: float, num_frames: int | None, fps: float | None) -> list[int]:
    if total <= 0:
        return []
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        n = max(1, min(MAX_FPS_FRAMES, round(duration * fps), total))
        if num_frames is not None:
            n = min(n, num_frames)
    else:
        n = num_frames if num_frames is not None else DEFAULT_NUM_FRAMES
        if n <= 0:
            raise ValueError(f"num_frames must be > 0, got {n}")
    # uniform over [0, total-1]; repeats when the clip is shorter than n (keeps T fixed for batching)
    return torch.linspace(0, total - 1, n).round().long().tolist()


def _resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of ``uint8 (T, C, H, W)`` frames (no-op at the same size).

    On CPU this uses PyTorch's uint8 kernel directly (the channels-last frames torchcodec returns are its fast
    path); other devices go through float32, which is what the uint8 kernel matches to within one level.
    """
    if tuple(frames.shape[-2:]) == size:
        return frames
    if frames.device.type == "cpu" and frames.dtype == torch.uint8:
        return torch.nn.functional.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False)
    out = torch.nn.functional.interpolate(
        frames.float(), size=size, mode="bilinear", antialias=True, align_corners=False
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def sample_frames(
    video: Any,
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    max_pixels: int | None = None,
    return_metadata: bool = False,
) -> torch.Tensor | FrameSample:
    """Decode ``num_frames`` uniformly spaced frames (default 8), or ``fps`` frames per second of video.

    With both, ``fps`` decides and ``num_frames`` caps. Output ``uint8 (T, C, H, W)``, downscaled so that
    ``H * W <= max_pixels``. Raises :class:`VideoDecodeError` (a ``RuntimeError``) naming the file for
    unreadable or truncated clips.
    """
    dec = open_video(video)
    name = _describe(video)
    check_complete(dec, name)
    md = dec.metadata
    total = md.num_frames or len(dec)
    src_fps = float(md.average_fps or 0.0)
    duration = float(md.duration_seconds or (total / src_fps if src_fps else 0.0))
    idx = _indices(total, duration, num_frames, fps)
    if not idx:
        raise VideoDecodeError(f"{name}: video has no frames")
    try:  # one sorted batch: torchcodec decodes forward, seeking only to reach a later keyframe
        batch = dec.get_frames_at(indices=idx)
    except Exception as err:
        raise VideoDecodeError(f"{name}: cannot decode frames {idx[:3]}... ({err})") from err
    frames = batch.data
    if frames.ndim == 4 and frames.shape[-1] == 3 and frames.shape[1] != 3:  # NHWC decoders -> NCHW
        frames = frames.permute(0, 3, 1, 2)
    h, w = int(frames.shape[-2]), int(frames.shape[-1])
    frames = _resize(frames, fit_size(h, w, max_pixels)).contiguous()
    if not return_metadata:
        return frames
    return FrameSample(
        frames=frames,
        indices=idx,
        timestamps=[float(t) for t in batch.pts_seconds.tolist()],
        source_fps=src_fps,
        duration=duration,
        total_frames=total,
        original_size=(h, w),
        sampled_fps=(len(idx) / duration) if duration else 0.0,
        path=name if isinstance(video, (str, os.PathLike, dict)) else None,
    )
