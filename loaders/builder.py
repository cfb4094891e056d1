"""One ``datasets`` builder for all MMLA tasks.

A :class:`MMLAConfig` per task (``mintrec``) and a text-only variant of each
(``mintrec_text``). Use the class directly (datasets 5.x runs no loading scripts)::

    b = MMLABuilder(config_name="mintrec", data_dir="/data/MMLA-Datasets", cache_dir=...)
    b.download_and_prepare(); ds = b.as_dataset()

``data_dir`` is any folder :func:`mmla.loaders.sources.find_source` understands; ``videos_dir``
stands in for ``manual_dir`` (clips of restricted corpora, or any other clip folder). ``audio=True``
adds an ``audio`` column (``datasets.Audio``, decoded by torchcodec) holding each clip's mp4 path, so the
clip's AAC track decodes from the same file as its frames; nothing is copied.
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
CORE_COLUMNS = ("id", "text", "label", "dataset", "task", "clip_id", "video", "audio", "audio_silent")


@dataclass
class MMLAConfig(datasets.BuilderConfig):
    """``task``: registry key; ``with_video``: add the ``Video`` column; ``extra_columns``: comma-separated.

    ``audio``: also an ``Audio`` column at ``audio_sampling_rate`` on the same clip files (needs
    ``with_video``). A clip without an audio track is a bad row naming the clip (``skip_bad`` drops it), or
    with ``allow_silent`` silence of the clip's length, flagged in an ``audio_silent`` column and reported
    (:attr:`MMLABuilder.silent_audio`).
    """

    task: str = "mintrec"
    with_video: bool = True
    audio: bool = False
    audio_sampling_rate: int = 16000
    allow_silent: bool = False
    videos_dir: str | None = None
    skip_bad: bool = False
    verify_videos: bool = True
    extra_columns: str = ""
    fingerprint: str = ""


def config_name(task: str | TaskSpec, text_only: bool = False) -> str:
    key = task.key if isinstance(task, TaskSpec) else get_task(task).key
    return f"{key}_text" if text_only else key


def features_for(
    task: TaskSpec,
    *,
    with_video: bool,
    extra_columns: tuple[str, ...] = (),
    audio_sampling_rate: int | None = None,
    silent_flag: bool = False,
) -> datasets.Features:
    """The task's features; ``audio_sampling_rate``: add the ``Audio`` column (``silent_flag``: and
    ``audio_silent``)."""
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
    if audio_sampling_rate is not None:
        if not with_video:
            raise ValueError("audio=True needs the clips: the text-only config has no video to take the audio from")
        feats["audio"] = datasets.Audio(sampling_rate=audio_sampling_rate)
        if silent_flag:
            feats["audio_silent"] = datasets.Value("bool")
    for col in extra_columns:
        if col not in feats:
            feats[col] = datasets.Value("string")
    return datasets.Features(feats)


class ClipError(ValueError):
    """A clip reference that may not be followed: outside the allowed folders, or another corpus' clip."""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class VideoResolver:
    """Finds a clip by file name under a few allowed folders (recursively), and never outside them.

    The folders are the corpus' own release ``video/`` folder (the Hub archive extracted there, nested or
    not) and the user's ``--videos`` folder, in the order given. A clip is named by its file name
    (``MIntRec_S05_E16_329.mp4``: exact name first, then any letter case) or by a path relative to one of
    the folders. Absolute paths and ``..`` outside the folders, links that resolve outside them, and file
    names of another corpus (``MOSI_*.mp4`` in a MUStARD row) raise :class:`ClipError` before the file
    system is asked anything about them, so an error never tells whether a foreign file exists.
    """

    def __init__(self, folders: list[Path | None], task: TaskSpec | None = None):
        roots: dict[str, None] = {}
        for f in folders:
            if f is not None and Path(f).is_dir():
                roots.setdefault(os.path.realpath(f))
        self.roots = list(roots)
        self.folders = [Path(r) for r in self.roots]
        self.task = task
        self._index: dict[str, tuple[dict[str, list[str]], dict[str, list[str]]]] = {}

    def _names(self, root: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        if root not in self._index:
            exact: dict[str, list[str]] = {}
            lower: dict[str, list[str]] = {}
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith("._"):  # macOS resource forks inside tar archives
                        continue
                    full = os.path.join(dirpath, name)
                    exact.setdefault(name, []).append(full)
                    lower.setdefault(name.lower(), []).append(full)
            self._index[root] = (exact, lower)
        return self._index[root]

    def _check_corpus(self, clip: str, name: str) -> None:
        task = self.task
        if task is None:
            return
        low = name.lower()
        if any(low.startswith(p.lower() + "_") for p in task.clip_prefixes):
            return
        for other in TASKS.values():
            for p in other.clip_prefixes:
                if p not in task.clip_prefixes and low.startswith(p.lower() + "_"):
                    raise ClipError(
                        f"clip {clip!r} is a {other.dataset} clip; a {task.key} row may only name {task.dataset} "
                        f"clips ({task.clip_example})"
                    )

    def _confined(self, path: str, root: str, clip: str) -> Path:
        real = os.path.realpath(path)
        if not _inside(real, root):
            raise ClipError(f"clip {clip!r} is a link that resolves outside the video folder {root}")
        return Path(real)

    def __call__(self, clip: str) -> Path | None:
        norm = clip.replace("\\", "/")
        name = norm.rstrip("/").rsplit("/", 1)[-1]
        parts = norm.split("/")
        inside: list[str] = []
        if os.path.isabs(norm) or norm.startswith("/") or ".." in parts or name in ("", ".", ".."):
            inside = [r for r in self.roots if os.path.isabs(norm) and _inside(os.path.normpath(norm), r)]
            if not inside or ".." in parts:
                raise ClipError(
                    f"clip path {clip!r} points outside the video folders "
                    f"({', '.join(self.roots) or 'none given'}); name clips by file name"
                )
        self._check_corpus(clip, name)
        if inside:
            return self._confined(norm, inside[0], clip) if os.path.isfile(norm) else None
        if "/" in norm:
            for root in self.roots:
                cand = os.path.join(root, *parts)
                if os.path.isfile(cand):
                    return self._confined(cand, root, clip)
        for root in self.roots:
            exact, lower = self._names(root)
            hits = exact.get(name) or lower.get(name.lower())
            if not hits:
                continue
            if len(hits) > 1:
                raise ClipError(f"{len(hits)} files named {name!r} under {root} ({', '.join(hits[:3])}); keep one")
            return self._confined(hits[0], root, clip)
        return None


def check_video(path: Path) -> str | None:
    """None if the clip decodes and is complete (not cut short), else the reason: checked before it is embedded."""
    from mmla.loaders.video import clip_problem

    return clip_problem(path)


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
        self.empty_texts: list[dict[str, Any]] = []
        self.silent_audio: list[dict[str, Any]] = []
        """Rows whose clip has no audio track and got silence (``allow_silent``); filled while generating."""

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
            features=features_for(
                task,
                with_video=self.config.with_video,
                extra_columns=self.extra_columns,
                audio_sampling_rate=self.config.audio_sampling_rate if self.config.audio else None,
                silent_flag=self.config.audio and self.config.allow_silent,
            ),
            homepage=task.homepage,
            license=f"{task.license.display}: {task.license.terms}",
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

    def _add_audio(self, example: dict[str, Any], row: RawRow, path: Path) -> bool:
        """Fill the row's ``audio`` cell (the clip's path, or silence); False: a bad row, skipped."""
        from mmla.loaders.audio import AudioDecodeError, audio_cell

        try:
            cell, silent = audio_cell(path, self.config.audio_sampling_rate, allow_silent=self.config.allow_silent,
                                      verify=self.config.verify_videos)  # fmt: skip
        except AudioDecodeError as err:
            self._bad(row, SourceError(str(err), path=row.path, line=row.line,
                                       hint="replace the clip, or build with skip_bad=True to drop the row"))  # fmt: skip
            return False
        example["audio"] = cell
        if self.config.allow_silent:
            example["audio_silent"] = silent
        if silent:
            record = {"task": self.config.task, "file": row.path, "line": row.line, "id": row.id, "clip": str(path)}
            self.silent_audio.append(record)
            logger.warning("%s:%s: clip %s has no audio track; its audio column is silence (allow_silent)",
                           row.path, row.line, path)  # fmt: skip
        return True

    def _generate_examples(self, source: Source, split: str) -> Iterator[tuple[Key, dict[str, Any]]]:
        from mmla.loaders.fetch import missing_videos_message

        task = self.task_spec
        videos_dir = Path(self.config.videos_dir).expanduser() if self.config.videos_dir else None
        resolve = VideoResolver([videos_dir, source.video_dir], task)
        extras = self.extra_columns
        seen: dict[str, tuple[str, int]] = {}
        n = rows = 0
        for row in source.read(split, task):
            rows += 1
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
            if row.id in seen:
                first = seen[row.id]
                where = f"line {first[1]}" if first[0] == row.path else f"{first[0]}:{first[1]}"
                self._bad(row, SourceError(f"duplicate id {row.id!r} in split {split!r} (first at {where})",
                                           path=row.path, line=row.line,
                                           hint="ids must be unique within a split; --skip-bad keeps the first"))  # fmt: skip
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
                try:
                    path = resolve(row.clip) if row.clip else None
                except ClipError as err:
                    self._bad(row, SourceError(str(err), path=row.path, line=row.line,
                                               hint="clips must be inside the corpus' video folder or --videos"))  # fmt: skip
                    continue
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
                if self.config.audio and not self._add_audio(example, row, path):
                    continue
            for col in extras:
                val = row.extras.get(col)
                example[col] = None if val is None else str(val)
            if not row.text.strip():
                self.empty_texts.append({"task": task.key, "file": row.path, "line": row.line, "id": row.id})
                logger.warning("%s:%s: empty text (id %r); kept, and counted in the build statistics",
                               row.path, row.line, row.id)  # fmt: skip
            seen[row.id] = (row.path, row.line)
            yield Key(0, n), example
            n += 1
        if n == 0:
            path = source.splits[split]
            why = f"all {rows} rows were skipped as bad (see the warnings)" if rows else "it has no data rows"
            raise SourceError(f"split {split!r} of {task.key} is empty: {why}", path=path,
                              hint="fix the file, or remove it to build without this split")  # fmt: skip
