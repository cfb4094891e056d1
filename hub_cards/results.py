"""Reading ``results.json`` files (the schema of docs/architecture.md) for cards and leaderboards.

Everything downstream (model cards, leaderboards, pushes) goes through :func:`load_results`, so a
malformed file fails once, here, with the file and the field named.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmla.loaders.files import read_json
from mmla.loaders.tasks import DIMENSIONS, TASKS, TaskSpec

RESULTS_FILENAME = "results.json"
METRICS: tuple[str, ...] = ("acc", "wf1", "wp", "f1", "r", "p")
METRIC_LABELS: dict[str, str] = {"acc": "ACC", "wf1": "WF1", "wp": "WP", "f1": "F1", "r": "R", "p": "P"}
METHODS: dict[str, str] = {"zero-shot": "zero-shot", "sft": "SFT", "it": "IT"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_repo_id(value: str | None) -> bool:
    """True for an ``org/name`` string that is not a local path (a Hub id the Hub's YAML checks accept)."""
    return bool(value) and bool(_REPO_ID.match(str(value))) and not os.path.exists(str(value))


@dataclass(frozen=True)
class RunResults:
    """One evaluated run: a parsed and checked ``results.json``."""

    path: Path
    data: Mapping[str, Any]

    @property
    def model(self) -> str:
        return str(self.data["model"])

    @property
    def adapter(self) -> str | None:
        return self.data.get("adapter") or None

    @property
    def base_model(self) -> str | None:
        return self.data.get("base_model") or None

    @property
    def method(self) -> str:
        return str(self.data.get("method") or "zero-shot").lower()

    @property
    def method_label(self) -> str:
        return METHODS.get(self.method, self.method)

    @property
    def split(self) -> str:
        return str(self.data["split"])

    @property
    def tasks(self) -> Mapping[str, Mapping[str, Any]]:
        return self.data["tasks"]

    @property
    def task_set(self) -> frozenset[str]:
        return frozenset(self.tasks)

    @property
    def text_only(self) -> bool:
        return bool(self.data.get("text_only", False))

    @property
    def overall(self) -> Mapping[str, Any]:
        return self.data.get("overall") or pooled(self.tasks.values())

    @property
    def dimensions(self) -> dict[str, Mapping[str, Any]]:
        dims = self.data.get("dimensions")
        if dims:
            return dict(dims)
        by_dim: dict[str, list[Mapping[str, Any]]] = {}
        for key, entry in self.tasks.items():
            by_dim.setdefault(task_dimension(key, entry), []).append(entry)
        return {dim: pooled(entries) for dim, entries in by_dim.items()}

    @property
    def display_name(self) -> str:
        """Short human name: the model's last path component (and the adapter's), with the method."""
        base = Path(self.model.rstrip("/")).name or self.model
        if self.adapter:
            base = f"{base} + {Path(str(self.adapter).rstrip('/')).name}"
        return f"{base} ({self.method_label})"

    def task_spec(self, key: str) -> TaskSpec | None:
        return TASKS.get(key)


def task_dimension(key: str, entry: Mapping[str, Any]) -> str:
    if entry.get("dimension"):
        return str(entry["dimension"])
    spec = TASKS.get(key)
    return spec.dimension if spec else "other"


def pooled(entries: Iterable[Mapping[str, Any]]) -> dict[str, float | int]:
    """ACC pooled over tasks: sum(acc * n) / sum(n), exactly the pooled accuracy since acc = correct / n."""
    entries = list(entries)
    n = sum(int(e["n"]) for e in entries)
    if not n:
        return {"acc": 0.0, "n": 0}
    correct = sum(float(e["metrics"]["acc"]) * int(e["n"]) for e in entries)
    return {"acc": round(correct / n, 2), "n": n}


def _fail(path: Path, field: str, problem: str) -> ValueError:
    return ValueError(
        f"{path}: field {field!r} {problem}. Expected a results.json written by `mmla eval` "
        "(schema in docs/architecture.md)."
    )


def _number(path: Path, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, field, f"must be a finite number, got {value!r}")
    return float(value)


def load_results(path: str | os.PathLike[str]) -> RunResults:
    """Read and check one ``results.json`` (or the run folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results file; pass a results.json or a run folder written by `mmla eval`")
    data = read_json(path)
    if not isinstance(data, dict):
        raise _fail(path, "<root>", "must be a JSON object")
    for field in ("model", "split"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise _fail(path, field, "is missing or not a non-empty string")
    method = str(data.get("method") or "zero-shot").lower()
    if method not in METHODS:
        raise _fail(path, "method", f"is {method!r}; expected one of {list(METHODS)}")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise _fail(path, "tasks", "is missing or empty")
    for key, entry in tasks.items():
        where = f"tasks.{key}"
        if not isinstance(entry, dict):
            raise _fail(path, where, "must be an object")
        n = entry.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise _fail(path, f"{where}.n", f"must be a non-negative integer, got {n!r}")
        metrics = entry.get("metrics")
        if not isinstance(metrics, dict) or "acc" not in metrics:
            raise _fail(path, f"{where}.metrics.acc", "is missing")
        for name, value in metrics.items():
            _number(path, f"{where}.metrics.{name}", value)
        dim = entry.get("dimension") or (TASKS[key].dimension if key in TASKS else None)
        if dim is None:
            raise _fail(path, f"{where}.dimension", "is missing (needed for a task outside the MMLA registry)")
        if dim not in DIMENSIONS and key in TASKS:
            raise _fail(path, f"{where}.dimension", f"is {dim!r}; expected one of {list(DIMENSIONS)}")
    if "overall" in data:
        overall = data["overall"]
        if not isinstance(overall, dict) or "acc" not in overall:
            raise _fail(path, "overall.acc", "is missing")
        _number(path, "overall.acc", overall["acc"])
    return RunResults(path=path, data=data)


def load_many(paths: Iterable[str | os.PathLike[str]]) -> list[RunResults]:
    runs = [load_results(p) for p in paths]
    if not runs:
        raise ValueError("no results given; pass one or more results.json files or run folders")
    return runs


def check_compatible(runs: Sequence[RunResults], *, allow_mixed: bool = False) -> list[str]:
    """Refuse to rank or merge runs scored on different splits or task sets.

    With ``allow_mixed`` the mismatch is returned as footnote lines instead (the caller prints them).
    """
    notes: list[str] = []
    splits = sorted({r.split for r in runs})
    if len(splits) > 1:
        detail = ", ".join(f"{r.path} ({r.split})" for r in runs)
        if not allow_mixed:
            raise ValueError(
                f"results from different splits cannot be compared: {detail}. "
                "Evaluate every model on the same split, or pass --allow-mixed to show them with a footnote."
            )
        notes.append(f"Mixed splits ({', '.join(splits)}): scores on different splits are not directly comparable.")
    task_sets = {r.task_set for r in runs}
    if len(task_sets) > 1:
        detail = ", ".join(f"{r.path} ({','.join(sorted(r.task_set))})" for r in runs)
        if not allow_mixed:
            raise ValueError(
                f"results cover different task sets: {detail}. Pooled ACC over different tasks is not comparable; "
                "evaluate every model on the same tasks, or pass --allow-mixed to show them with a footnote."
            )
        notes.append("Mixed task sets: pooled ACC covers different tasks for some rows (see the Tasks column).")
    return notes


def fmt(value: Any) -> str:
    """A metric cell: two decimals, or an em dash when absent."""
    if value is None:
        return "—"
    return f"{float(value):.2f}"
