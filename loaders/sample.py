"""Synthetic MMLA releases with real tiny mp4 clips, for tests and the demo.

Two layouts of the same rows and clips are written (read by :mod:`mmla.loaders.sources.mmla_release`).
The one the upstream scripts read::

    <out_dir>/MMLA-Datasets/<release folder>/{train,dev,test}.tsv     # columns: id, utterance, <dimension>, speaker
    <out_dir>/MMLA-Datasets/<release folder>/video/<release_name>_<id>.mp4   # redistributable corpora only
    <out_dir>/manual_videos/<release_name>_<id>.mp4                    # restricted corpora (stands in for manual_dir)

and the one the Hub release ``THUIAR/MMLA-Datasets`` really has (what ``mmla data fetch`` downloads; the
tests serve it from a local fake Hub)::

    <out_dir>/MMLA-Datasets-hub/<release folder>/{train,dev,test}.tsv   # columns: id, text, label
    <out_dir>/MMLA-Datasets-hub/<release folder>/<irregular name>.tar.gz
        # one archive per redistributable corpus, e.g. MIntRec/MIntRec_video.tar.gz holding
        # MIntRec_video/<split>/MIntRec_<id>.mp4 (nested folders, as the real archives have)

Only a handful of distinct clips are encoded (H.264 + AAC, different sizes, lengths and
frame rates) and copied for every row, so all twelve tasks are written in a few seconds.
Nothing binary is committed: everything is generated at run time.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmla.loaders.files import claim_output_dir, staged_dir
from mmla.loaders.tasks import TaskSpec, resolve_tasks

RELEASE_DIRNAME = "MMLA-Datasets"
HUB_DIRNAME = "MMLA-Datasets-hub"
MANUAL_DIRNAME = "manual_videos"
SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
SAMPLE_KIND = "mmla data sample"

HUB_ARCHIVES = {
    "MIntRec": "MIntRec_video.tar.gz",
    "MELD": "MELD_video.tar.gz",
    "AnnoMi-client": "AnnoMI-client_video.tar.gz",
    "UR-FUNNY-v2": "UR-FUNNYv2_video.tar.gz",
    "CH-SIMSv2.0": "Ch-simsv2_video.tar.gz",
}
"""Archive names on the Hub as SPEC.md lists them (capital I, missing dash, other case); the other corpora
get ``<folder>_video.tar.gz``. Fetching never relies on these names: it lists the folder."""


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
    out_dir: str | os.PathLike,
    tasks: str | Iterable[str] | None = None,
    per_class: int = 2,
    seed: int = 0,
    *,
    overwrite: bool = False,
    hub_layout: bool = True,
) -> Path:
    """Write tiny synthetic releases of ``tasks`` (default: all 12) and return the (upstream layout) release root.

    Every class appears ``per_class`` times in each of train/validation/test. The returned
    path is what ``load_task(task, data=...)`` takes; restricted corpora (those whose video MMLA does not
    redistribute) keep their clips in ``<out_dir>/manual_videos`` (pass it as ``videos=``), because the
    real release does not contain them. With ``hub_layout`` the same rows and clips are also written in
    the Hub's layout under ``<out_dir>/MMLA-Datasets-hub`` (see the module docstring).

    ``out_dir`` must be new, empty, or (with ``overwrite``) an earlier sample: everything is written to a temp
    folder next to it that replaces it only when complete, so user files are never touched.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    specs = resolve_tasks(tasks)
    out = claim_output_dir(out_dir, SAMPLE_KIND, overwrite=overwrite)
    with staged_dir(out, SAMPLE_KIND) as tmp:
        root, manual = tmp / RELEASE_DIRNAME, tmp / MANUAL_DIRNAME
        hub = tmp / HUB_DIRNAME if hub_layout else None
        root.mkdir()
        manual.mkdir()
        with tempfile.TemporaryDirectory(dir=tmp, prefix=".clips-") as clip_dir:
            clips = [
                write_clip(Path(clip_dir) / f"clip{k}.mp4", spec, seed=seed + k) for k, spec in enumerate(CLIP_SPECS)
            ]
            for task in specs:
                rows = _write_task(task, root, manual, clips, per_class=per_class, seed=seed)
                if hub is not None:
                    _write_hub_task(task, hub, rows, root / task.release_dir / "video")
    return Path(out_dir) / RELEASE_DIRNAME


@dataclass(frozen=True)
class _Row:
    split: str
    id: str
    text: str
    label: str


def _write_task(
    task: TaskSpec, root: Path, manual: Path, clips: list[Path], *, per_class: int, seed: int
) -> list[_Row]:
    rng = random.Random(f"{seed}-{task.key}")
    folder = root / task.release_dir
    video_dir = folder / "video" if task.video.redistributable else manual
    folder.mkdir(parents=True, exist_ok=True)
    video_dir.mkdir(parents=True, exist_ok=True)
    written: list[_Row] = []
    for split, filename in SPLIT_FILES.items():
        rows = []
        for label in task.labels:
            for j in range(per_class):
                rows.append((label, j))
        rng.shuffle(rows)
        with open(folder / filename, "w", encoding="utf-8", newline="") as fh:
            # Plain tab-separated lines, as upstream writes them (the release reader reads TSVs literally).
            fh.write("\t".join(["id", "utterance", task.dimension, "speaker"]) + "\n")
            for i, (label, _) in enumerate(rows):
                uid = f"{split}_{i:04d}"
                text = _text(task, label, rng, i)
                fh.write("\t".join([uid, text, label, rng.choice(["A", "B", "C"])]) + "\n")
                clip = clips[rng.randrange(len(clips))]
                shutil.copyfile(clip, video_dir / f"{task.release_name}_{uid}.mp4")
                written.append(_Row(filename.removesuffix(".tsv"), uid, text, label))
    return written


def hub_archive_name(task: TaskSpec) -> str:
    return HUB_ARCHIVES.get(task.release_dir, f"{task.release_dir}_video.tar.gz")


def _write_hub_task(task: TaskSpec, hub: Path, rows: list[_Row], video_dir: Path) -> None:
    """The Hub layout: ``id, text, label`` TSVs and, when redistributable, one archive with nested folders."""
    folder = hub / task.release_dir
    folder.mkdir(parents=True, exist_ok=True)
    for filename in SPLIT_FILES.values():
        split = filename.removesuffix(".tsv")
        lines = ["id\ttext\tlabel"] + [f"{r.id}\t{r.text}\t{r.label}" for r in rows if r.split == split]
        (folder / filename).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if task.video.redistributable:
        name = hub_archive_name(task)
        stem = name.removesuffix(".tar.gz")
        members = {f"{stem}/{r.split}/{task.release_name}_{r.id}.mp4": video_dir / f"{task.release_name}_{r.id}.mp4"
                   for r in rows}  # fmt: skip
        write_tar_gz(folder / name, members)


def write_tar_gz(path: Path, members: dict[str, Path | bytes]) -> Path:
    """A reproducible ``.tar.gz`` (fixed mtimes and owners) of ``{name in archive: file or bytes}``, with the
    parent folders as their own members, as ``tar czf`` writes them."""
    dirs = sorted({str(Path(n).parents[i]) for n in members for i in range(len(Path(n).parts) - 1)})
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf,
    ):
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tf.addfile(info)
        for name, src in sorted(members.items()):
            data = src if isinstance(src, bytes) else Path(src).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
    return path
