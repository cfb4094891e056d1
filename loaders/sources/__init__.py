"""Readers for the release layouts a task's data can come in.

Each reader module exposes ``find(root, task) -> Source | None`` (does this folder hold the
task in my layout?) and ``read(path, task) -> Iterator[RawRow]``. Rows carry the raw label
string; mapping to class ids (aliases, case) happens once, in the builder. Every error names
the file and line and says what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmla.loaders.tasks import TaskSpec

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"train": "train", "dev": "validation", "valid": "validation", "val": "validation",
                 "validation": "validation", "test": "test"}  # fmt: skip
LAYOUTS = ("mmla_release", "llamafactory", "jsonl")


class SourceError(ValueError):
    """Malformed source data; the message names the file (and line) and what to do."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None, hint: str = ""):
        where = f"{path}:{line}: " if path is not None and line is not None else f"{path}: " if path else ""
        self.path, self.line, self.reason = (str(path) if path else None), line, message
        super().__init__(f"{where}{message}" + (f" ({hint})" if hint else ""))


@dataclass
class RawRow:
    """One utterance as a reader sees it, before label mapping and video resolution."""

    id: str
    text: str
    label: str
    clip: str | None
    """Video file name (relative, e.g. ``MIntRec_S05_E16_329.mp4``), or None when the source names none."""
    path: str
    line: int
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Source:
    """Where one task's splits live in one layout."""

    layout: str
    root: Path
    splits: dict[str, Path]
    video_dir: Path | None = None
    """Folder holding the clips named by ``RawRow.clip`` (None when the layout has no video folder)."""

    def read(self, split: str, task: TaskSpec) -> Iterator[RawRow | SourceError]:
        module = _module(self.layout)
        yield from module.read(self.splits[split], task)


def _module(layout: str):
    from mmla.loaders.sources import jsonl, llamafactory, mmla_release

    return {"mmla_release": mmla_release, "llamafactory": llamafactory, "jsonl": jsonl}[layout]


def find_source(root: str | Path, task: TaskSpec) -> Source:
    """Auto-detect the layout of ``root`` for ``task`` (release folder, LLaMA-Factory JSON, JSONL/CSV)."""
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise FileNotFoundError(f"data folder {root} does not exist")
    for layout in LAYOUTS:
        src = _module(layout).find(root, task)
        if src is not None:
            return src
    raise SourceError(
        f"no data for task {task.key!r} found in any known layout",
        path=root,
        hint=f"expected an MMLA release folder ({task.release_dir}/{{train,dev,test}}.tsv), LLaMA-Factory files "
        f"({task.release_name}_<split>_..._llamafactory.json), or <split>.jsonl / <split>.csv with text and label",
    )


def split_of(stem: str) -> str | None:
    return SPLIT_ALIASES.get(stem.lower())
