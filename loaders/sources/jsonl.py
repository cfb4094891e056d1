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
        if obj.get(key) is None:
            raise SourceError(f"missing field {key!r}", path=path, line=line, hint="each row needs text and label")
        if not isinstance(obj[key], str):  # never store a repr ("['a', 'b']", "3") as text or label
            raise SourceError(f"{key!r} must be a string, got {type(obj[key]).__name__} {_short(obj[key])}",
                              path=path, line=line, hint="fix the row")  # fmt: skip
    if not obj["label"].strip():
        raise SourceError("empty 'label'", path=path, line=line, hint="every row needs a label")
    uid = obj.get("id", n)
    if isinstance(uid, bool) or not isinstance(uid, (str, int)):
        raise SourceError(f"'id' must be a string or an integer, got {_short(uid)}", path=path, line=line)
    video = obj.get("video")
    if video is not None and not isinstance(video, str):
        raise SourceError(f"'video' must be a clip file name, got {_short(video)}", path=path, line=line)
    extras = {k: v for k, v in obj.items() if k not in {"id", "text", "label", "video"} | IGNORED}
    return RawRow(
        id=str(uid),
        text=obj["text"],
        label=obj["label"].strip(),
        clip=video or None,
        path=str(path),
        line=line,
        extras=extras,
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _safe_row(obj: Any, path: Path, line: int, n: int) -> RawRow | SourceError:
    try:
        return _row(obj, path, line, n)
    except SourceError as err:
        return err


def _read_csv(path: Path) -> Iterator[RawRow | SourceError]:
    """Standard CSV (quotes allowed); errors name the line where the bad record STARTS (a stray quote)."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            if not reader.fieldnames:
                raise SourceError("file is empty (no header)", path=path, line=1)
        except csv.Error as err:
            raise SourceError(f"bad header ({err})", path=path, line=1) from None
        n = 0
        while True:
            start = reader.line_num + 1
            try:
                rec = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise SourceError(
                    f"{err} in the record that starts at line {start}", path=path, line=start,
                    hint="a stray double quote opens a quoted field that runs on; quote the field or remove the quote",
                ) from None  # fmt: skip
            if None in rec or any(v is None for v in rec.values()):
                yield SourceError("wrong number of comma-separated fields", path=path, line=start)
                continue
            if any(_undecodable(v) for v in rec.values()) or any(_undecodable(k) for k in rec):
                yield SourceError("not UTF-8 text", path=path, line=start,
                                  hint="re-save the file as UTF-8, or build with --skip-bad to skip the row")  # fmt: skip
                continue
            yield _safe_row({k: (v if v != "" else None) for k, v in rec.items()}, path, start, n)
            n += 1


def _undecodable(text: str | None) -> bool:
    return text is not None and any("\udc80" <= ch <= "\udcff" for ch in text)


def read(path: Path, task: TaskSpec) -> Iterator[RawRow | SourceError]:
    """Rows; a malformed line is yielded as a :class:`SourceError` so that callers may skip it."""
    if path.suffix == ".csv":
        yield from _read_csv(path)
        return
    with open(path, "rb") as fh:
        n = 0
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                yield SourceError(f"not UTF-8 text (byte {err.start} of the line)", path=path, line=line,
                                  hint="re-save the file as UTF-8, or build with --skip-bad to skip the row")  # fmt: skip
                continue
            except json.JSONDecodeError as err:
                yield SourceError(f"invalid JSON ({err.msg})", path=path, line=line, hint="fix or remove the line")
                continue
            yield _safe_row(obj, path, line, n)
            n += 1
