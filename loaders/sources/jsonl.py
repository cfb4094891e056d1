"""Plain JSONL or CSV files for custom corpora.

``<root>/<split>.jsonl`` (or ``<root>/<task>/<split>.jsonl``; ``.csv`` alike), one object per
line with ``text`` and ``label`` and optionally ``id``, ``video`` (a clip path relative to the
file's folder, or absolute) and any extra fields, which are kept as columns. This is the
format of the real-text files under ``../shared/data/<task>/<split>.jsonl``
(``id, dataset, task, video, text, label``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmla.loaders.sources import RawRow, Source, SourceError, split_of
from mmla.loaders.tasks import TaskSpec

IGNORED = {"dataset", "task"}  # the builder sets these from the registry
EXTS = (".jsonl", ".csv")


def find(root: Path, task: TaskSpec) -> Source | None:
    if not root.is_dir():
        return None
    for folder in (root, root / task.key):
        splits: dict[str, Path] = {}
        for ext in EXTS:
            for path in sorted(folder.glob(f"*{ext}")) if folder.is_dir() else []:
                split = split_of(path.stem)
                if split and split not in splits:
                    splits[split] = path
        if splits:
            return Source("jsonl", folder, splits, folder)
    return None


def _row(obj: Any, path: Path, line: int, n: int) -> RawRow:
    if not isinstance(obj, dict):
        raise SourceError("expected a JSON object per line", path=path, line=line)
    for key in ("text", "label"):
        if obj.get(key) is None or (key == "label" and str(obj[key]).strip() == ""):
            raise SourceError(f"missing field {key!r}", path=path, line=line, hint="each row needs text and label")
    video = obj.get("video")
    extras = {k: v for k, v in obj.items() if k not in {"id", "text", "label", "video"} | IGNORED}
    return RawRow(
        id=str(obj.get("id", n)),
        text=str(obj["text"]),
        label=str(obj["label"]).strip(),
        clip=str(video) if video not in (None, "") else None,
        path=str(path),
        line=line,
        extras=extras,
    )


def _safe_row(obj: Any, path: Path, line: int, n: int) -> RawRow | SourceError:
    try:
        return _row(obj, path, line, n)
    except SourceError as err:
        return err


def read(path: Path, task: TaskSpec) -> Iterator[RawRow | SourceError]:
    """Rows; a malformed line is yielded as a :class:`SourceError` so that callers may skip it."""
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            for n, rec in enumerate(reader):
                if None in rec or any(v is None for v in rec.values()):
                    yield SourceError("wrong number of comma-separated fields", path=path, line=reader.line_num)
                    continue
                yield _safe_row({k: (v if v != "" else None) for k, v in rec.items()}, path, reader.line_num, n)
        return
    with open(path, encoding="utf-8") as fh:
        n = 0
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                yield SourceError(f"invalid JSON ({err.msg})", path=path, line=line, hint="fix or remove the line")
                continue
            yield _safe_row(obj, path, line, n)
            n += 1
