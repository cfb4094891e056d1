"""The evaluation output folder as a resume cache: claiming it, and its prediction files.

Each finished batch is appended to ``<output>/predictions/<task>.jsonl`` and flushed (per process
``<task>.part<rank>.jsonl`` under a multi-process launch), so a killed run resumes where it stopped.
A line cut by a kill is reported and dropped, never guessed at. At the end of a run each task's file
is rewritten in split order and the per-process parts are removed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from mmla.loaders.files import claim_output_dir, mark_output_dir, output_kind, read_json, write_text_atomic

__all__ = [
    "OUTPUT_KIND",
    "PredictionWriter",
    "claim_eval_output",
    "prepare_eval_output",
    "read_cache",
    "read_predictions",
    "rewrite_ordered",
]

logger = logging.getLogger(__name__)
OUTPUT_KIND = "mmla eval"


# ------------------------------------------------------------------------------------------ output folder
_LEGACY_ENTRIES = {"results.json", "predictions", "report.md", "dimensions.png", "radar.png"}


def _adopt_legacy(out: Path) -> None:
    """Mark an evaluation folder written before output markers existed, so that a rerun resumes it.

    Recognised only when it holds nothing but what ``mmla eval`` writes and its results.json is ours.
    """
    if not out.is_dir() or output_kind(out) is not None or not os.access(out, os.W_OK):
        return
    names = {p.name for p in out.iterdir()}
    if "results.json" not in names or not names <= _LEGACY_ENTRIES:
        return
    try:
        res = read_json(out / "results.json")
    except (OSError, ValueError):
        return
    if isinstance(res, dict) and "mmla_version" in res and "tasks" in res:
        mark_output_dir(out, OUTPUT_KIND)
        logger.info("%s: an evaluation output of an earlier mmla version; marked it and resuming", out)


def claim_eval_output(path: str | os.PathLike, *, protected: Sequence[Any] = (), option: str = "--output") -> Path:
    """Check, before any model or data is loaded, that ``path`` may hold this evaluation; return it resolved.

    A new or empty folder, or an earlier ``mmla eval`` output (which the run resumes). Refused: a file,
    user files, a folder holding an input (``protected``: data, videos, model, adapter), a read-only one.
    """
    _adopt_legacy(Path(path).expanduser())
    local = [p for p in protected if p is not None and Path(str(p)).expanduser().exists()]
    return claim_output_dir(path, OUTPUT_KIND, resume=True, protected=local, option=option)


def prepare_eval_output(path: str | os.PathLike) -> Path:
    """Claim ``path`` and mark it first, so that a run killed at any point is recognised and resumed."""
    out = claim_eval_output(path, option="output_dir")
    out.mkdir(parents=True, exist_ok=True)
    if output_kind(out) != OUTPUT_KIND:
        mark_output_dir(out, OUTPUT_KIND)
    return out


# ------------------------------------------------------------------------------------------ prediction files
def read_predictions(path: str | os.PathLike, *, repair: bool = True) -> dict[str, dict[str, Any]]:
    """Cached rows by id. A corrupted line (a run killed mid-write) is reported and dropped.

    With ``repair`` the file is rewritten without the bad lines so appends continue cleanly.
    """
    path = Path(path)
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    good: list[str] = []
    bad = 0
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row or "hash" not in row:
                raise ValueError("not a prediction row")
        except ValueError as err:
            bad += 1
            logger.warning("%s:%d: dropping corrupted cached prediction (%s); it will be recomputed", path, lineno, err)
            continue
        rows[str(row["id"])] = row
        good.append(line)
    if repair and (bad or (lines and lines[-1] != "")):
        write_text_atomic(path, "".join(g + "\n" for g in good))
    return rows


def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """The task's cached rows, including per-process parts left by a killed multi-process run."""
    rows: dict[str, dict[str, Any]] = {}
    for part in sorted(path.parent.glob(f"{path.stem}.part*.jsonl")):
        rows.update(read_predictions(part))
    rows.update(read_predictions(path))
    return rows


def rewrite_ordered(path: Path, rows: list[dict[str, Any]]) -> None:
    """The final predictions file: one row per sample in split order (process parts merged and removed)."""
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    for part in path.parent.glob(f"{path.stem}.part*.jsonl"):
        part.unlink()


class PredictionWriter:
    """Appends rows to each task's prediction file (opened on first use); :meth:`flush` after every batch."""

    def __init__(self, path_for: Callable[[str], Path]) -> None:
        self._path_for = path_for
        self._files: dict[str, TextIO] = {}
        self._stack = ExitStack()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def write(self, task_key: str, row: dict[str, Any]) -> None:
        if task_key not in self._files:
            path = self._path_for(task_key)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._files[task_key] = self._stack.enter_context(open(path, "a", encoding="utf-8"))  # noqa: SIM115 (closed by the stack)
        self._files[task_key].write(json.dumps(row, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        for f in self._files.values():
            f.flush()
