"""Reading ``results.json`` files (the schema of docs/architecture.md) for cards and leaderboards.

Everything downstream (model cards, leaderboards, pushes) goes through :func:`load_results`, so a
malformed file fails once, here, with the file and the field named: unknown task keys, metrics outside
0-100, and names that would break a card's markdown (newlines, ``|``, backticks, ...) are refused.

A run's *protocol* is how its prompts were built and answers parsed (``prompt_style``, ``label_set``,
``parse_mode``): runs of different protocols are never ranked or merged together silently.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub.utils import validate_repo_id

from mmla.loaders.files import output_kind, read_json
from mmla.loaders.tasks import DIMENSIONS, TASKS, get_task

RESULTS_FILENAME = "results.json"
METRICS: tuple[str, ...] = ("acc", "wf1", "wp", "f1", "r", "p")
METRIC_LABELS: dict[str, str] = {"acc": "ACC", "wf1": "WF1", "wp": "WP", "f1": "F1", "r": "R", "p": "P"}
METHODS: dict[str, str] = {"zero-shot": "zero-shot", "sft": "SFT", "it": "IT"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
MARKDOWN_UNSAFE = frozenset("|`<>[]*")
"""Characters that would break out of a table cell, a code span or a link in a card."""
SAMPLE_KIND = "mmla data sample"
LEGACY_STYLES = {"mmla": "paper"}
"""Prompt-style names of older results files -> current names (``mmla`` was the Appendix D wording)."""
PAPER_STYLES: dict[str, frozenset[str]] = {
    "zero-shot": frozenset({"upstream"}),
    "sft": frozenset({"upstream", "upstream_sft"}),
    "it": frozenset({"upstream", "upstream_sft"}),
}
"""Prompt styles the paper's numbers were produced with (upstream code), per method."""
PAPER_PROTOCOL = {"label_set": "upstream", "parse_mode": "upstream"}
"""The paper's label lists and answer parsing (upstream ``infer.py``/``eval.py``)."""


def _unsafe(value: str) -> str | None:
    """Why ``value`` would break the markdown it is written into (newlines, control, table characters), or None."""
    bad = sorted({c for c in value if unicodedata.category(c).startswith("C") or c in MARKDOWN_UNSAFE})
    if value.strip() and not bad:
        return None
    shown = ", ".join(repr(c) for c in bad) or "only blanks"
    return f"cannot be written into a card ({shown}); use a name without newlines, control characters or | ` < > [ ] *"


def check_repo_id(repo_id: str, option: str = "--repo-id") -> str:
    """A Hub repo id (``org/name``) or a one-line error naming the option."""
    try:
        validate_repo_id(repo_id)
    except ValueError as err:
        raise ValueError(
            f"{option} {repo_id!r} is not a valid Hub repo id: {str(err).strip().splitlines()[0]}"
        ) from None
    return repo_id


def check_name(value: str, option: str) -> str:
    """Refuse a name given on the command line that would break a card's markdown."""
    problem = _unsafe(value)
    if problem:
        raise ValueError(f"{option} {value!r} {problem}")
    return value


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
    def prompt_style(self) -> str:
        """How prompts were built (``upstream``, ``upstream_sft``, ``paper``); ``unrecorded`` for old files."""
        style = str(self.data.get("prompt_style") or "unrecorded")
        return LEGACY_STYLES.get(style, style)

    @property
    def label_set(self) -> str | None:
        return self.data.get("label_set") or None

    @property
    def parse_mode(self) -> str | None:
        return self.data.get("parse_mode") or None

    @property
    def synthetic_data(self) -> bool:
        """True when ``data`` is (inside) a synthetic sample release written by ``mmla data sample`` here."""
        data = self.data.get("data")
        if not isinstance(data, str) or not data or not Path(data).exists():
            return False
        path = Path(data).resolve()
        return any(output_kind(p) == SAMPLE_KIND for p in (path, *path.parents))

    @property
    def protocol(self) -> tuple[str, str | None, str | None]:
        """What makes two runs' scores comparable besides split and tasks: prompt style, label set, parsing."""
        return (self.prompt_style, self.label_set, self.parse_mode)

    @property
    def protocol_text(self) -> str:
        return protocol_text(self.protocol)

    @property
    def display_name(self) -> str:
        """Short human name: the model's last path component (and the adapter's), with the method."""
        base = Path(self.model.rstrip("/")).name or self.model
        if self.adapter:
            base = f"{base} + {Path(str(self.adapter).rstrip('/')).name}"
        return f"{base} ({self.method_label})"


def protocol_text(protocol: tuple[str, str | None, str | None]) -> str:
    """``prompt `upstream`, labels `full`, parsing `aliases``` (label set and parsing only when recorded)."""
    style, labels, parse = protocol
    parts = [f"prompt `{style}`"]
    parts += [f"labels `{labels}`"] if labels else []
    parts += [f"parsing `{parse}`"] if parse else []
    return ", ".join(parts)


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
    end = " " if problem.endswith(("?", ".")) else ". "
    return ValueError(
        f"{path}: field {field!r} {problem}{end}Expected a results.json written by `mmla eval` "
        "(schema in docs/architecture.md)."
    )


def _number(path: Path, field: str, value: Any, *, percent: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, field, f"must be a finite number, got {value!r}")
    if percent and not 0 <= value <= 100:
        raise _fail(path, field, f"is {value!r}; metrics are percentages between 0 and 100")
    return float(value)


def _text(path: Path, data: Mapping[str, Any], field: str) -> None:
    value = data.get(field)
    if value is None:
        return
    if not isinstance(value, str):
        raise _fail(path, field, f"must be a string, got {type(value).__name__}")
    problem = _unsafe(value)
    if problem:
        raise _fail(path, field, f"is {value!r}, which {problem}")


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
    for field in ("model", "split", "adapter", "base_model", "prompt_style", "label_set", "parse_mode"):
        _text(path, data, field)
    method = str(data.get("method") or "zero-shot").lower()
    if method not in METHODS:
        raise _fail(path, "method", f"is {method!r}; expected one of {list(METHODS)}")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise _fail(path, "tasks", "is missing or empty")
    for key, entry in tasks.items():
        where = f"tasks.{key}"
        try:
            get_task(key)
        except KeyError as err:
            raise _fail(path, where, f"is not an MMLA task: {err.args[0]}") from None
        if not isinstance(entry, dict):
            raise _fail(path, where, "must be an object")
        n = entry.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise _fail(path, f"{where}.n", f"must be a non-negative integer, got {n!r}")
        metrics = entry.get("metrics")
        if not isinstance(metrics, dict) or "acc" not in metrics:
            raise _fail(path, f"{where}.metrics.acc", "is missing")
        for name, value in metrics.items():
            _number(path, f"{where}.metrics.{name}", value, percent=True)
        ci = (entry.get("ci95") or {}).get("acc") if isinstance(entry.get("ci95"), dict) else None
        for i, bound in enumerate(ci if isinstance(ci, list | tuple) else ()):
            _number(path, f"{where}.ci95.acc[{i}]", bound, percent=True)
        dim = entry.get("dimension") or TASKS[key].dimension
        if dim not in DIMENSIONS:
            raise _fail(path, f"{where}.dimension", f"is {dim!r}; expected one of {list(DIMENSIONS)}")
    if "overall" in data:
        overall = data["overall"]
        if not isinstance(overall, dict) or "acc" not in overall:
            raise _fail(path, "overall.acc", "is missing")
        _number(path, "overall.acc", overall["acc"], percent=True)
    for dim, entry in (data.get("dimensions") or {}).items():
        if isinstance(entry, dict) and "acc" in entry:
            _number(path, f"dimensions.{dim}.acc", entry["acc"], percent=True)
    return RunResults(path=path, data=data)


def check_compatible(
    runs: Sequence[RunResults], *, allow_mixed: bool = False, mixed_protocols: str = "footnote"
) -> list[str]:
    """Refuse to rank or merge runs scored on different splits, task sets or prompt protocols.

    With ``allow_mixed`` the mismatch is returned as footnote lines instead (the caller prints them);
    ``mixed_protocols="sections"`` says the caller ranks each protocol apart.
    """
    notes: list[str] = []
    protocols = list(dict.fromkeys(r.protocol for r in runs))
    if len(protocols) > 1:
        detail = ", ".join(f"{r.path} ({r.protocol_text})" for r in runs)
        if not allow_mixed:
            raise ValueError(
                f"results use different prompt protocols: {detail}. Scores under different prompts, label lists "
                "or parsing are not comparable; evaluate every model with the same --prompt-style (and label/parse "
                "options), or pass --allow-mixed to show them apart"
            )
        if mixed_protocols == "sections":
            notes.append("Mixed prompt protocols: each is ranked in its own section, never against the others.")
        else:
            kinds = "; ".join(protocol_text(p) for p in protocols)
            notes.append(f"Mixed prompt protocols ({kinds}): rows scored with different prompts are not comparable.")
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
