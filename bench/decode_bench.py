"""Clips decoded and frame-sampled per second per CPU core: our ``sample_frames`` (torchcodec) vs PyAV.

Both sides do the same job on the same generated H.264 clips: pick ``--num-frames`` uniformly spaced
frames (the same indices: checked before timing, along with the pixels), return them as
``uint8 (T, C, H, W)`` resized so that ``H * W <= --max-pixels``. PyAV decodes sequentially up to the
last wanted frame and resizes in swscale (the usual PyAV recipe, as in transformers' ``read_video_pyav``);
``sample_frames`` asks torchcodec for all wanted frames in one sorted batch (forward decoding, keyframe
seeks across GOPs) and resizes the uint8 frames with PyTorch. Everything is single-threaded; pin the
process to one core for per-core figures. Repeats alternate the two sides (ours, PyAV, ours, ...) so
that load changes hit both; the reported ratio is the median of the per-repeat ratios.

    taskset -c 1 .venv/bin/python bench/decode_bench.py --clips 12 --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def make_clip(path: Path, width: int, height: int, seconds: float, fps: int, seed: int) -> None:
    """A realistic-size H.264 clip (yuv420p, x264 ``veryfast`` crf 23, moving noise + gradient so frames differ).

    x264's scene-cut detection puts a few keyframes in each clip (e.g. frames 0, 29, 61 of a 4 s clip).
    """
    import av

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    noise = rng.integers(0, 12, size=(height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23"}
        for i in range(int(seconds * fps)):
            img = np.stack([(xx + i * 4) % 256, (yy + i * 2) % 256, (xx + yy + i * 3) % 256], -1).astype(np.uint8)
            img = img + np.roll(noise, i * 3, axis=1)
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode())


def pyav_sample(path: Path, num_frames: int, max_pixels: int) -> tuple[torch.Tensor, list[int]]:
    """The wanted frames (uint8 TCHW) and their indices, by sequential PyAV decoding."""
    import av

    from mmla.loaders.video import fit_size

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        total = stream.frames
        wanted = torch.linspace(0, total - 1, num_frames).round().long().tolist()
        h, w = fit_size(stream.height, stream.width, max_pixels)
        want = set(wanted)
        got: dict[int, np.ndarray] = {}
        for i, frame in enumerate(c.decode(stream)):
            if i in want:
                got[i] = frame.to_ndarray(format="rgb24", width=w, height=h)
            if i >= wanted[-1]:
                break
    return torch.from_numpy(np.stack([got[i] for i in wanted])).permute(0, 3, 1, 2).contiguous(), wanted


def ours_sample(path: Path, num_frames: int, max_pixels: int) -> tuple[torch.Tensor, list[int]]:
    from mmla.loaders.video import sample_frames

    out = sample_frames(path, num_frames=num_frames, max_pixels=max_pixels, return_metadata=True)
    return out.frames, out.indices


Sampler = Callable[..., tuple[torch.Tensor, list[int]]]


def check_same_job(clips: list[Path], **kw) -> float:
    """Both sides pick the same frame indices and output shape; returns the worst mean |pixel difference|."""
    worst = 0.0
    for clip in clips:
        (a, ia), (b, ib) = ours_sample(clip, **kw), pyav_sample(clip, **kw)
        if ia != ib or a.shape != b.shape or a.dtype != b.dtype:
            raise SystemExit(
                f"{clip.name}: decoders disagree: indices {ia} vs {ib}, {tuple(a.shape)} vs {tuple(b.shape)}"
            )
        worst = max(worst, (a.float() - b.float()).abs().mean().item())
    return worst


def run_once(fn: Sampler, clips: list[Path], **kw) -> float:
    t0 = time.perf_counter()
    for clip in clips:
        fn(clip, **kw)
    return len(clips) / (time.perf_counter() - t0)


def bench(clips: list[Path], repeats: int, **kw) -> tuple[list[float], list[float]]:
    """Clips/s of (ours, PyAV) per repeat, the two sides alternating within each repeat."""
    for fn in (ours_sample, pyav_sample):
        fn(clips[0], **kw)  # warm-up (library loading)
    ours, pyav = [], []
    for r in range(repeats):
        order = [(ours_sample, ours), (pyav_sample, pyav)]
        for fn, rates in order if r % 2 == 0 else order[::-1]:
            rates.append(run_once(fn, clips, **kw))
    return ours, pyav


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--size", default="640x360")
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--max-seconds", type=float, default=5.0)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--num-frames", type=int, default=8)
    p.add_argument("--max-pixels", type=int, default=320 * 180)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(1)
    width, height = map(int, args.size.split("x"))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for i in range(args.clips):
            secs = args.min_seconds + (args.max_seconds - args.min_seconds) * i / max(1, args.clips - 1)
            clips.append(Path(tmp) / f"clip{i}.mp4")
            make_clip(clips[-1], width, height, secs, args.fps, seed=i)
        kw = {"num_frames": args.num_frames, "max_pixels": args.max_pixels}
        pixel_diff = check_same_job(clips, **kw)
        shape = tuple(ours_sample(clips[0], **kw)[0].shape)
        ours, pyav = bench(clips, args.repeats, **kw)
        mb = sum(os.path.getsize(c) for c in clips) / len(clips) / 1e6
    ratios = [o / v for o, v in zip(ours, pyav, strict=True)]
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    load = ", ".join(f"{x:.2f}" for x in load_before) + " -> " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.clips} clips {width}x{height} H.264 @ {args.fps} fps, {args.min_seconds}-{args.max_seconds} s "
          f"(avg {mb:.2f} MB); {args.num_frames} frames, max_pixels={args.max_pixels}; 1 thread on cores {cores}; "
          f"{args.repeats} alternating repeats")  # fmt: skip
    print(f"load average (1/5/15 min) before -> after: {load}")
    print(f"same frame indices and output {shape}; worst mean |pixel difference| {pixel_diff:.2f} (resize filters)")
    print("| decoder | clips/s per core (median) | min-max |\n|---|---|---|")
    for name, rates in ((f"mmla sample_frames (torchcodec {__import__('torchcodec').__version__})", ours),
                        (f"PyAV {__import__('av').__version__} sequential decode", pyav)):  # fmt: skip
        print(f"| {name} | {statistics.median(rates):.1f} | {min(rates):.1f}-{max(rates):.1f} |")
    print(
        f"ratio torchcodec/PyAV: {statistics.median(ratios):.2f}x (median of per-repeat ratios; "
        f"range {min(ratios):.2f}-{max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
