"""One ``datasets`` builder for all MMLA tasks.

A :class:`MMLAConfig` per task (``mintrec``) and a text-only variant of each
(``mintrec_text``). Use the class directly (datasets 5.x runs no loading scripts)::

    b = MMLABuilder(config_name="mintrec", data_dir="/data/MMLA-Datasets", cache_dir=...)
    b.download_and_prepare(); ds = b.as_dataset()

``data_dir`` is any folder :func:`mmla.loaders.sources.find_source` understands; ``videos_dir``
stands in for ``manual_dir`` (clips of restricted corpora, or any other clip folder).
:func:`mmla.loaders.load_task` fills ``fingerprint`` (file sizes and mtimes of the source)
so that editing the source or pointing at another folder never reuses a stale cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from datasets.builder import Key

from mmla.loaders.sources import SPLITS, RawRow, Source, SourceError, find_source
from mmla.loaders.tasks import TASKS, TaskSpec, get_task

logger = logging.getLogger(__name__)

VERSION = datasets.Version("1.0.0")
CORE_COLUMNS = ("id", "text", "label", "dataset", "task", "clip_id", "video")


@dataclass
class MMLAConfig(datasets.BuilderConfig):
    """``task``: registry key; ``with_video``: add the ``Video`` column; ``extra_columns``: comma-separated."""

    task: str = "mintrec"
    with_video: bool = True
    videos_dir: str | None = None
    skip_bad: bool = False
    verify_videos: bool = True
    extra_columns: str = ""
    fingerprint: str = ""


def config_name(task: str | TaskSpec, text_only: bool = False) -> str:
    key = task.key if isinstance(task, TaskSpec) else get_task(task).key
    return f"{key}_text" if text_only else key


def features_for(task: TaskSpec, *, with_video: bool, extra_columns: tuple[str, ...] = ()) -> datasets.Features:
    feats: dict[str, Any] = {
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(task.labels)),
        "dataset": datasets.Value("string"),
        "task": datasets.Value("string"),
        "clip_id": datasets.Value("string"),
    }
    if with_video:
        feats["video"] = datasets.Video()
    for col in extra_columns:
        if col not in feats:
            feats[col] = datasets.Value("string")
    return datasets.Features(feats)


class VideoResolver:
    """Finds a clip by file name in a list of folders (exact name first, then any letter case)."""

    def __init__(self, folders: list[Path]):
        self.folders = [f for f in folders if f is not None and f.is_dir()]
        self._listing: dict[Path, dict[str, str]] = {}

    def __call__(self, clip: str) -> Path | None:
        if os.path.isabs(clip):
            return Path(clip) if os.path.isfile(clip) else None
        for folder in self.folders:
            cand = folder / clip
            if cand.is_file():
                return cand
        name = Path(clip).name.lower()
        for folder in self.folders:
            if folder not in self._listing:
                self._listing[folder] = {p.lower(): p for p in os.listdir(folder)}
            hit = self._listing[folder].get(name)
            if hit is not None:
                return folder / hit
        return None


def check_video(path: Path) -> str | None:
    """None if torchcodec can open the clip and it has a video stream, else the reason."""
    from torchcodec.decoders import VideoDecoder

    try:
        dec = VideoDecoder(str(path), seek_mode="approximate")
        if not dec.metadata.num_frames and not dec.metadata.duration_seconds:
            return "no decodable video frames"
    except Exception as err:  # torchcodec raises RuntimeError/ValueError for corrupt files
        return f"cannot decode ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    return None


def source_fingerprint(src: Source, videos_dir: str | os.PathLike | None = None) -> str:
    """Cheap content fingerprint of a source: split file names/sizes/mtimes and clip-folder mtimes."""
    h = hashlib.sha256(src.layout.encode())
    for split, path in sorted(src.splits.items()):
        st = path.stat()
        h.update(f"{split}:{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    for folder in (src.video_dir, Path(videos_dir) if videos_dir else None):
        if folder is not None and folder.is_dir():
            h.update(f"{folder}:{folder.stat().st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def peek_extra_columns(src: Source, task: TaskSpec, limit: int = 50) -> tuple[str, ...]:
    """Extra corpus columns (speaker, ...) seen in the first rows of each split, in first-seen order."""
    seen: dict[str, None] = {}
    for split in src.splits:
        for n, row in enumerate(src.read(split, task)):
            for key in getattr(row, "extras", {}):
                if key not in CORE_COLUMNS:
                    seen.setdefault(key)
            if n + 1 >= limit:
                break
    return tuple(seen)


def prepare(builder: datasets.DatasetBuilder, **kwargs: Any) -> None:
    """``download_and_prepare``, surfacing our own error (file, line, what to do) instead of datasets' wrapper."""
    from datasets.exceptions import DatasetGenerationError

    try:
        builder.download_and_prepare(**kwargs)
    except DatasetGenerationError as err:
        cause = err.__cause__
        if isinstance(cause, (SourceError, FileNotFoundError, RuntimeError)):
            raise cause.with_traceback(None) from None
        raise


class MMLABuilder(datasets.GeneratorBasedBuilder):
    """Builds any MMLA task from a local source folder (see module docstring)."""

    BUILDER_CONFIG_CLASS = MMLAConfig
    BUILDER_CONFIGS = [
        cfg
        for key, spec in TASKS.items()
        for cfg in (
            MMLAConfig(name=key, version=VERSION, task=key, with_video=True, description=f"{spec.dataset} with video"),
            MMLAConfig(
                name=f"{key}_text", version=VERSION, task=key, with_video=False, description=f"{spec.dataset} text"
            ),
        )
    ]
    DEFAULT_CONFIG_NAME = "mintrec"

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("dataset_name", "mmla")
        if kwargs.get("data_dir") is not None:  # absolute, so two relative spellings never share a cache entry
            kwargs["data_dir"] = str(Path(kwargs["data_dir"]).expanduser().resolve())
        super().__init__(*args, **kwargs)
        self.skipped: list[dict[str, Any]] = []

    @property
    def task_spec(self) -> TaskSpec:
        return get_task(self.config.task)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.config.extra_columns.split(",") if c)

    def _info(self) -> datasets.DatasetInfo:
        task = get_task(self.config.task)
        return datasets.DatasetInfo(
            description=f"{task.dataset}: {task.dimension_text} classification ({len(task.labels)} classes), "
            f"from the MMLA benchmark.",
            features=features_for(task, with_video=self.config.with_video, extra_columns=self.extra_columns),
            homepage=task.homepage,
            license=task.video.license,
            citation=task.citation,
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        root = dl_manager.manual_dir
        if root is None:
            raise FileNotFoundError(
                f"no source folder for {self.config.task!r}: pass data_dir=<MMLA release / LLaMA-Factory / JSONL folder>"
            )
        src = find_source(root, self.task_spec)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"source": src, "split": split})
            for split in SPLITS
            if split in src.splits
        ]

    def _bad(self, row: RawRow | None, err: SourceError) -> None:
        if not self.config.skip_bad:
            raise err
        record = {"task": self.config.task, "file": err.path, "line": err.line, "reason": err.reason}
        if row is not None:
            record["id"] = row.id
        logger.warning("skipping %s", err)
        self.skipped.append(record)

    def _generate_examples(self, source: Source, split: str) -> Iterator[tuple[Key, dict[str, Any]]]:
        from mmla.loaders.fetch import missing_videos_message

        task = self.task_spec
        videos_dir = Path(self.config.videos_dir).expanduser() if self.config.videos_dir else None
        folders = [videos_dir, videos_dir / task.release_name if videos_dir else None, source.video_dir]
        resolve = VideoResolver([f for f in folders if f is not None])
        extras = self.extra_columns
        n = 0
        for row in source.read(split, task):
            if isinstance(row, SourceError):  # malformed row (bad JSON, missing field, wrong field count)
                self._bad(None, row)
                continue
            try:
                label = task.label_id(row.label)
            except ValueError as err:
                self._bad(
                    row, SourceError(str(err), path=row.path, line=row.line, hint="fix the label or add an alias")
                )
                continue
            example: dict[str, Any] = {
                "id": row.id,
                "text": row.text,
                "label": label,
                "dataset": task.dataset,
                "task": task.key,
                "clip_id": row.clip,
            }
            if self.config.with_video:
                path = resolve(row.clip) if row.clip else None
                if path is None:
                    what = f"video {row.clip!r}" if row.clip else "no video named"
                    self._bad(row, SourceError(f"{what} not found", path=row.path, line=row.line,
                                               hint=missing_videos_message(task, resolve.folders)))  # fmt: skip
                    continue
                if self.config.verify_videos:
                    reason = check_video(path)
                    if reason:
                        self._bad(row, SourceError(f"video {path}: {reason}", path=row.path, line=row.line,
                                                   hint="replace the clip or build with --skip-bad"))  # fmt: skip
                        continue
                example["video"] = str(path)
            for col in extras:
                val = row.extras.get(col)
                example[col] = None if val is None else str(val)
            yield Key(0, n), example
            n += 1
