"""``load_task``: the one way ``eval`` and ``training`` get a task's data."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import datasets

from mmla.loaders.builder import MMLABuilder, config_name, peek_extra_columns, prepare, source_fingerprint
from mmla.loaders.fetch import fetch_corpus, require_videos, restricted_message
from mmla.loaders.sources import find_source
from mmla.loaders.tasks import MMLA_HUB_REPO, TaskSpec, get_task

logger = logging.getLogger(__name__)

HUB_NAMESPACE = "mmla"
"""``load_task(task)`` with no ``data`` reads the built dataset ``mmla/<task>`` from the Hub."""


def is_built_dataset(path: Path) -> bool:
    """A folder written by ``mmla data build`` (or any Parquet repo with a card listing ``configs``)."""
    readme = path / "README.md"
    if not readme.is_file():
        return False
    from huggingface_hub import DatasetCard

    try:
        data = DatasetCard.load(readme).data.to_dict()
    except Exception:  # not a card with YAML
        return False
    return bool(data.get("configs"))


def _builder(task: TaskSpec, root: str | Path, *, text_only: bool, videos: Any, cache_dir: Any, skip_bad: bool,
             verify_videos: bool, audio: bool = False, allow_silent: bool = False) -> MMLABuilder:  # fmt: skip
    src = find_source(root, task)
    return MMLABuilder(
        config_name=config_name(task, text_only),
        data_dir=str(root),
        cache_dir=None if cache_dir is None else str(cache_dir),
        videos_dir=None if (videos is None or text_only) else str(Path(videos).expanduser().resolve()),
        skip_bad=skip_bad,
        verify_videos=verify_videos,
        audio=audio,
        allow_silent=allow_silent,
        extra_columns=",".join(peek_extra_columns(src, task)),
        fingerprint=source_fingerprint(src, None if text_only else videos),
    )


def _attach_videos(ds: datasets.Dataset, task: TaskSpec, videos: str | os.PathLike) -> datasets.Dataset:
    """Add a ``Video`` column to a built restricted-corpus dataset from its ``clip_id`` and a local folder.

    ``clip_id`` comes from a downloaded dataset, so it is untrusted: only clips inside ``videos`` (after
    links are resolved) and named as this corpus' clips are used (:class:`~mmla.loaders.builder.VideoResolver`).
    """
    from mmla.loaders.builder import ClipError, VideoResolver
    from mmla.loaders.fetch import missing_videos_message

    folder = Path(videos).expanduser().resolve()
    resolve = VideoResolver([folder], task)
    paths = []
    for i, clip in enumerate(ds["clip_id"]):
        try:
            path = resolve(clip) if clip else None
        except ClipError as err:
            raise ValueError(f"row {i} of {task.key}: {err}") from None
        if path is None:
            raise FileNotFoundError(
                f"row {i} (clip_id {clip!r}) of {task.key}: clip not found. {missing_videos_message(task, [folder])}"
            )
        paths.append(str(path))
    return ds.add_column("video", paths).cast_column("video", datasets.Video())


def _from_built(task: TaskSpec, path: str, *, text_only: bool, videos: Any, split: str | None, audio: bool = False,
                allow_silent: bool = False, **kw: Any):  # fmt: skip
    configs = datasets.get_dataset_config_names(path)
    wanted = [config_name(task, True), task.key] if text_only else [task.key, config_name(task, True)]
    name = next((c for c in wanted if c in configs), None)
    if name is None:
        raise ValueError(f"{path} has no config for task {task.key!r} (configs: {configs})")
    dsd = datasets.load_dataset(path, name, **kw)
    out = {}
    for key, ds in dsd.items():
        names = getattr(ds.features.get("label"), "names", None)
        if names != list(task.labels):
            raise ValueError(
                f"{path} [{name}/{key}]: label names {names} differ from the registry's {list(task.labels)}"
            )
        if text_only and "video" in ds.column_names:
            ds = ds.remove_columns("video")
        elif not text_only and "video" not in ds.column_names:
            require_videos(task, videos, text_only=False)
            if videos is None:
                raise FileNotFoundError(f"{path} [{name}] has no video column: pass videos=<folder> or text_only=True")
            ds = _attach_videos(ds, task, videos)
        if audio:
            from mmla.loaders.audio import add_audio_column

            silent: list[str] = []
            ds = add_audio_column(ds, allow_silent=allow_silent, silent=silent)
            _report_silent(task, silent)
        out[key] = ds
    dsd = datasets.DatasetDict(out)
    return dsd[split] if split else dsd


def load_task(
    task: str | TaskSpec,
    data: str | os.PathLike | None = None,
    *,
    split: str | None = None,
    videos: str | os.PathLike | None = None,
    text_only: bool = False,
    cache_dir: str | os.PathLike | None = None,
    skip_bad: bool = False,
    verify_videos: bool = True,
    revision: str | None = None,
    audio: bool = False,
    allow_silent: bool = False,
    **kw: Any,
) -> datasets.DatasetDict | datasets.Dataset:
    """Load one MMLA task as ``DatasetDict`` (or the ``split`` as ``Dataset``).

    ``data``: a source folder (MMLA release, LLaMA-Factory JSON, JSONL/CSV; auto-detected), a folder built
    by ``mmla data build``, ``"THUIAR/MMLA-Datasets"`` (downloads only this corpus, see :mod:`.fetch`), any
    other Hub repo id of a built dataset, or None for ``mmla/<task>`` on the Hub. ``videos``: folder of
    clips (required for restricted corpora unless ``text_only``). Extra ``kw`` go to ``load_dataset`` for
    built/Hub datasets (e.g. ``revision``, ``download_config``) or to ``download_and_prepare`` for sources.
    Features: ``id, text, label (ClassLabel), dataset, task, clip_id, video`` (no video when text-only)
    plus corpus extras. ``audio``: also an ``audio`` column (``datasets.Audio`` at 16 kHz, decoded by
    torchcodec from the clip's own mp4, never a copy); a clip without an audio track is an error naming it,
    or with ``allow_silent`` silence of its length, reported in a warning (and, for source folders, flagged
    in an ``audio_silent`` column).
    """
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    if audio and text_only:
        raise ValueError("audio=True needs the clips, and text_only=True loads none; drop one of them")
    require_videos(spec, videos, text_only=text_only)
    if data is None:
        data = f"{HUB_NAMESPACE}/{spec.key}"
    path = Path(data).expanduser()
    if path.exists():
        if is_built_dataset(path):
            return _from_built(spec, str(path), text_only=text_only, videos=videos, split=split, cache_dir=cache_dir,
                               audio=audio, allow_silent=allow_silent, **kw)  # fmt: skip
        root: str | Path = path
    elif str(data) == MMLA_HUB_REPO:
        root = fetch_corpus(spec, text_only=text_only, revision=revision).root
    elif "/" in str(data) and not str(data).startswith((".", "/", "~")):
        if revision:
            kw["revision"] = revision
        return _from_built(spec, str(data), text_only=text_only, videos=videos, split=split, cache_dir=cache_dir,
                           audio=audio, allow_silent=allow_silent, **kw)  # fmt: skip
    else:
        raise FileNotFoundError(f"data {str(data)!r} is neither an existing folder nor a Hub repo id")
    if not text_only and not spec.video.redistributable and videos is None:
        raise FileNotFoundError(restricted_message(spec))
    builder = _builder(spec, root, text_only=text_only, videos=videos, cache_dir=cache_dir, skip_bad=skip_bad,
                       verify_videos=verify_videos, audio=audio, allow_silent=allow_silent)  # fmt: skip
    prepare(builder, **kw)
    if builder.skipped:
        logger.warning("%s: skipped %d bad rows (skip_bad=True)", spec.key, len(builder.skipped))
    out = builder.as_dataset(split=split)
    if audio and allow_silent:  # from the data, so that a cached build reports them too
        splits = {split: out} if split else dict(out)
        _report_silent(spec, [c for ds in splits.values() for c, s in zip(ds["clip_id"], ds["audio_silent"],
                                                                           strict=True) if s])  # fmt: skip
    return out


def _report_silent(task: TaskSpec, clips: list[str]) -> None:
    if clips:
        logger.warning("%s: %d clip(s) without an audio track got silence (allow_silent=True): %s", task.key,
                       len(clips), ", ".join(clips[:5]) + (" ..." if len(clips) > 5 else ""))  # fmt: skip
