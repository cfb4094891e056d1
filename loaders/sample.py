"""Synthetic MMLA releases with real tiny mp4 clips, for tests and the demo.

The layout mirrors the published release (Hub dataset ``THUIAR/MMLA-Datasets``, read by
:mod:`mmla.loaders.sources.mmla_release`)::

    <out_dir>/MMLA-Datasets/<release folder>/{train,dev,test}.tsv     # columns: id, utterance, <dimension>, speaker
    <out_dir>/MMLA-Datasets/<release folder>/video/<release_name>_<id>.mp4   # redistributable corpora only
    <out_dir>/manual_videos/<release_name>_<id>.mp4                    # restricted corpora (stands in for manual_dir)

Only a handful of distinct clips are encoded (H.264 + AAC, different sizes, lengths and
frame rates) and copied for every row, so all twelve tasks are written in a few seconds.
Nothing binary is committed: everything is generated at run time.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmla.loaders.tasks import TaskSpec, resolve_tasks

RELEASE_DIRNAME = "MMLA-Datasets"
MANUAL_DIRNAME = "manual_videos"
SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


@dataclass(frozen=True)
class ClipSpec:
    width: int
    height: int
    seconds: float
    fps: int


# Distinct clips reused across rows: landscape, portrait, 4:3; 0.5 s to 2 s; 8 to 12 fps.
CLIP_SPECS: tuple[ClipSpec, ...] = (
    ClipSpec(64, 48, 0.5, 8),
    ClipSpec(48, 64, 1.0, 10),
    ClipSpec(80, 60, 1.5, 12),
    ClipSpec(64, 48, 2.0, 10),
)

_TEMPLATES_EN = (
    "well, i guess this is what {label} sounds like",
    "you know, that was pure {label} if you ask me",
    "honestly? {label}, nothing else",
    "okay so here is my {label} moment",
)
_TEMPLATES_ZH = ("这句话听起来是{label}的", "我觉得这就是{label}", "说实话，{label}")


def write_clip(path: str | os.PathLike, spec: ClipSpec, *, seed: int = 0) -> Path:
    """Encode one short H.264 (yuv420p) + AAC mp4: a moving colour gradient and a sine tone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import av  # noqa: F401
    except ImportError:  # PyAV is a dev extra; the ffmpeg CLI (needed by torchcodec's libs anyway) also works
        return _write_clip_ffmpeg(path, spec, seed=seed)
    return _write_clip_av(path, spec, seed=seed)


def _write_clip_av(path: Path, spec: ClipSpec, *, seed: int) -> Path:
    import av

    n_frames = max(1, round(spec.seconds * spec.fps))
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    yy, xx = np.mgrid[0 : spec.height, 0 : spec.width]
    sample_rate, chunk = 16000, 1024
    n_samples = int(spec.seconds * sample_rate)
    tone = 220.0 * (1 + seed % 4)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=spec.fps)
        vstream.width, vstream.height, vstream.pix_fmt = spec.width, spec.height, "yuv420p"
        vstream.options = {"preset": "ultrafast", "crf": "30"}
        astream = container.add_stream("aac", rate=sample_rate)
        astream.layout = "mono"
        for i in range(n_frames):
            img = np.empty((spec.height, spec.width, 3), dtype=np.uint8)
            for c in range(3):
                img[..., c] = (base[c] + xx * (c + 1) * 3 + yy * 2 + i * 9) % 256
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode())
        t = np.arange(n_samples, dtype=np.float32) / sample_rate
        wave = (0.2 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
        for start in range(0, n_samples, chunk):
            part = wave[start : start + chunk][None, :]
            aframe = av.AudioFrame.from_ndarray(part, format="fltp", layout="mono")
            aframe.sample_rate = sample_rate
            aframe.pts = start
            container.mux(astream.encode(aframe))
        container.mux(astream.encode())
    os.replace(tmp, path)
    return path


def _write_clip_ffmpeg(path: Path, spec: ClipSpec, *, seed: int) -> Path:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError(
            "writing sample clips needs PyAV (`pip install av`) or the ffmpeg CLI (`apt-get install ffmpeg`)"
        )
    tmp = path.with_name(path.name + ".part.mp4")
    src = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}:duration={spec.seconds}"
    tone = f"sine=frequency={220 * (1 + seed % 4)}:sample_rate=16000:duration={spec.seconds}"
    cmd = [exe, "-loglevel", "error", "-y", "-f", "lavfi", "-i", src, "-f", "lavfi", "-i", tone,
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(tmp)]  # fmt: skip
    subprocess.run(cmd, check=True)
    os.replace(tmp, path)
    return path


def _text(task: TaskSpec, label: str, rng: random.Random, i: int) -> str:
    templates = _TEMPLATES_ZH if task.language == "zh" else _TEMPLATES_EN
    return rng.choice(templates).format(label=label.replace("_", " ")) + f" ({i})"


def write_sample_release(
    out_dir: str | os.PathLike, tasks: str | Iterable[str] | None = None, per_class: int = 2, seed: int = 0
) -> Path:
    """Write tiny synthetic releases of ``tasks`` (default: all 12) and return the release root.

    Every class appears ``per_class`` times in each of train/validation/test. The returned
    path is what ``load_task(task, data=...)`` takes; restricted corpora (MOSI, IEMOCAP,
    IEMOCAP-DA, Anno-MI) keep their clips in ``<out_dir>/manual_videos`` (pass it as
    ``videos=``), because the real release does not contain them.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    out_dir = Path(out_dir)
    root = out_dir / RELEASE_DIRNAME
    manual = out_dir / MANUAL_DIRNAME
    root.mkdir(parents=True, exist_ok=True)
    manual.mkdir(parents=True, exist_ok=True)
    specs = resolve_tasks(tasks)

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".clips-") as tmp:
        clips = [write_clip(Path(tmp) / f"clip{k}.mp4", spec, seed=seed + k) for k, spec in enumerate(CLIP_SPECS)]
        for task in specs:
            _write_task(task, root, manual, clips, per_class=per_class, seed=seed)
    return root


def _write_task(task: TaskSpec, root: Path, manual: Path, clips: list[Path], *, per_class: int, seed: int) -> None:
    rng = random.Random(f"{seed}-{task.key}")
    folder = root / task.release_dir
    video_dir = folder / "video" if task.video.redistributable else manual
    folder.mkdir(parents=True, exist_ok=True)
    video_dir.mkdir(parents=True, exist_ok=True)
    for split, filename in SPLIT_FILES.items():
        rows = []
        for label in task.labels:
            for j in range(per_class):
                rows.append((label, j))
        rng.shuffle(rows)
        tmp = folder / (filename + ".part")
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
            writer.writerow(["id", "utterance", task.dimension, "speaker"])
            for i, (label, _) in enumerate(rows):
                uid = f"{split}_{i:04d}"
                writer.writerow([uid, _text(task, label, rng, i), label, rng.choice(["A", "B", "C"])])
                clip = clips[rng.randrange(len(clips))]
                shutil.copyfile(clip, video_dir / f"{task.release_name}_{uid}.mp4")
        os.replace(tmp, folder / filename)
