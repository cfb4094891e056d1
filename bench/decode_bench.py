"""Clips decoded and frame-sampled per second per CPU core: our ``sample_frames`` (torchcodec) vs PyAV.

Both sides do the same job on the same generated H.264 clips: pick ``--num-frames`` uniformly spaced
frames, return them as ``uint8 (T, C, H, W)`` resized so that ``H * W <= --max-pixels``. PyAV decodes
sequentially up to the last wanted frame (the usual PyAV recipe; frame-accurate seeking is not
exposed), torchcodec seeks to each wanted frame. Everything runs single-threaded (one core).

    .venv/bin/python bench/decode_bench.py --clips 12 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_clip(path: Path, width: int, height: int, seconds: float, fps: int, seed: int) -> None:
    """A realistic-size H.264 clip (yuv420p, default x264 preset, moving noise + gradient so frames differ)."""
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


def pyav_sample(path: Path, num_frames: int, max_pixels: int) -> torch.Tensor:
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
    return torch.from_numpy(np.stack([got[i] for i in wanted])).permute(0, 3, 1, 2).contiguous()


def ours_sample(path: Path, num_frames: int, max_pixels: int) -> torch.Tensor:
    from mmla.loaders.video import sample_frames

    return sample_frames(path, num_frames=num_frames, max_pixels=max_pixels)


def bench(fn, clips: list[Path], repeats: int, **kw) -> tuple[float, tuple[int, ...]]:
    fn(clips[0], **kw)  # warm-up (library loading)
    rates, shape = [], ()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for clip in clips:
            shape = tuple(fn(clip, **kw).shape)
        rates.append(len(clips) / (time.perf_counter() - t0))
    return statistics.median(rates), shape


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--size", default="640x360")
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--max-seconds", type=float, default=5.0)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--num-frames", type=int, default=8)
    p.add_argument("--max-pixels", type=int, default=320 * 180)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for i in range(args.clips):
            secs = args.min_seconds + (args.max_seconds - args.min_seconds) * i / max(1, args.clips - 1)
            clips.append(Path(tmp) / f"clip{i}.mp4")
            make_clip(clips[-1], width, height, secs, args.fps, seed=i)
        kw = {"num_frames": args.num_frames, "max_pixels": args.max_pixels}
        ours, shape_o = bench(ours_sample, clips, args.repeats, **kw)
        pyav, shape_p = bench(pyav_sample, clips, args.repeats, **kw)
        mb = sum(os.path.getsize(c) for c in clips) / len(clips) / 1e6
    print(f"{args.clips} clips {width}x{height} H.264 @ {args.fps} fps, {args.min_seconds}-{args.max_seconds} s "
          f"(avg {mb:.2f} MB); {args.num_frames} frames, max_pixels={args.max_pixels}; 1 thread")  # fmt: skip
    print("| decoder | clips/s per core | output |\n|---|---|---|")
    print(f"| mmla sample_frames (torchcodec {__import__('torchcodec').__version__}) | {ours:.1f} | {shape_o} |")
    print(f"| PyAV {__import__('av').__version__} sequential decode | {pyav:.1f} | {shape_p} |")
    print(f"speed-up: {ours / pyav:.2f}x")


if __name__ == "__main__":
    main()
