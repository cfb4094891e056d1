"""One evaluated run: :class:`RunResults`, the type behind ``results.json``.

The runner builds it and writes it; reports, model cards, leaderboards, pushes and the training callback
read it, through :func:`load_results`, which checks a file once and fails with the file and the field named
(unknown task keys with a did-you-mean, metrics outside 0-100, names that would break a card's markdown,
counts that do not match the percentages).

Pooled accuracies (``dimensions``, ``overall``) are always computed from the tasks' counts
(:func:`mmla.eval.metrics.pooling.pool`), never from rounded percentages; the stored values are checked
against them. Files written before ``schema_version`` 2 have no ``correct`` counts: they are recovered
exactly from ``acc`` and ``n`` (ACC has two decimals, so ``round(acc * n / 100)`` is the count for any
``n`` below 10,000), and checked.

A run's *protocol* is how its prompts were built and answers parsed (``prompt_style``, ``label_set``,
``parse_mode``); its *data source* says where its rows came from (:class:`DataSource`). Runs that differ in
split, task set, protocol or data source are never ranked or merged together silently
(:func:`check_compatible`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmla.eval.metrics.pooling import Accuracy, pool
from mmla.loaders.files import output_kind, read_json, write_json_atomic
from mmla.loaders.tasks import DIMENSIONS, TaskSpec, get_task

__all__ = [
    "DATA_KINDS",
    "METHODS",
    "METRICS",
    "MODALITIES",
    "RESULTS_FILENAME",
    "SCHEMA_VERSION",
    "DataSource",
    "ResultsError",
    "RunResults",
    "TaskResult",
    "check_compatible",
    "check_result_names",
    "load_results",
    "protocol_text",
    "unsafe_text",
]

logger = logging.getLogger(__name__)

RESULTS_FILENAME = "results.json"
SCHEMA_VERSION = 2
"""1: files without the field (no per-task ``correct``, no ``data_source``). 2: both recorded."""
METRICS: tuple[str, ...] = ("acc", "wf1", "wp", "f1", "r", "p")
METRIC_LABELS: dict[str, str] = {"acc": "ACC", "wf1": "WF1", "wp": "WP", "f1": "F1", "r": "R", "p": "P"}
METHODS: dict[str, str] = {"zero-shot": "zero-shot", "sft": "SFT", "it": "IT"}
DATA_KINDS = ("official", "user", "sample", "unknown")
"""official: a verified fetch of the Hub release; user: any other files; sample: a synthetic ``mmla data
sample`` release; unknown: not recorded (files written before ``schema_version`` 2)."""
SAMPLE_KIND = "mmla data sample"
FETCH_KIND = "mmla data fetch"
MARKDOWN_UNSAFE = frozenset("|`<>[]*")
"""Characters that would break out of a table cell, a code span or a link in a card."""
LEGACY_STYLES = {"mmla": "paper"}
"""Prompt-style names of older results files -> current names (``mmla`` was the Appendix D wording)."""
LEGACY_PROTOCOL = {"prompt_style": "paper", "label_set": "full", "parse_mode": "aliases"}
"""What mmla used before it recorded each protocol field: the Appendix D prompt, full label lists, aliases."""
_NAMES = ("model", "split", "adapter", "base_model", "prompt_style", "label_set", "parse_mode")
"""Top-level strings that end up in cards and tables, so they must be markdown-safe."""


class ResultsError(ValueError):
    """A results file (or dict) that is not a valid ``results.json``; the message names the file and field."""


def unsafe_text(value: str) -> str | None:
    """Why ``value`` would break the markdown it is written into (newlines, control, table characters), or None."""
    bad = sorted({c for c in value if unicodedata.category(c).startswith("C") or c in MARKDOWN_UNSAFE})
    if value.strip() and not bad:
        return None
    shown = ", ".join(repr(c) for c in bad) or "only blanks"
    return f"cannot be written into a card ({shown}); use a name without newlines, control characters or | ` < > [ ] *"


def check_result_names(**names: str | None) -> None:
    """Refuse, before an evaluation starts, names that its results.json could not be read back with."""
    for name, value in names.items():
        problem = unsafe_text(value) if value else None  # blank: the runner records a placeholder
        if problem:
            raise ValueError(f"{name.replace('_', ' ')} {value!r} {problem}")


# -------------------------------------------------------------------------------------------- data source
@dataclass(frozen=True)
class DataSource:
    """Where a run's rows came from (recorded by the runner when it loads the data)."""

    kind: str
    """One of :data:`DATA_KINDS`."""
    repo: str | None = None
    revision: str | None = None
    """The commit sha the files were downloaded at (official data)."""
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "repo": self.repo, "revision": self.revision, "path": self.path}

    def describe(self) -> str:
        """One phrase for tables and notes."""
        if self.kind == "official":
            return f"official release {self.repo}@{(self.revision or '?')[:12]}"
        if self.kind == "sample":
            return "synthetic sample release (`mmla data sample`)"
        if self.kind == "user":
            return f"user files ({self.repo or self.path or 'in memory'})"
        return "not recorded (results.json of an older mmla)"

    @property
    def key(self) -> tuple[str, str | None]:
        """What two runs must share to be scored on the same data: the kind, and the commit of official data."""
        return (self.kind, self.revision if self.kind == "official" else None)

    @classmethod
    def detect(cls, data: Any, tasks: Sequence[TaskSpec], split: str) -> DataSource:
        """The source of ``data`` as ``mmla.eval.runner`` loads it (a path, a repo id, None or datasets).

        *official* needs proof: every task's split file was downloaded by ``mmla data fetch`` from
        ``THUIAR/MMLA-Datasets`` (huggingface_hub's download record names the commit) and is unchanged since
        (its hash equals the Hub's). A synthetic release is recognised by the marker ``mmla data sample``
        writes. Anything else is *user* data.
        """
        from mmla.loaders.tasks import MMLA_HUB_REPO

        if data is None:
            return cls("user", repo="mmla/<task>")
        if not isinstance(data, str | os.PathLike):
            return cls("user")  # datasets given in memory
        text = str(data)
        path = Path(text).expanduser()
        if path.exists():
            resolved = path.resolve()
            if any(output_kind(p) == SAMPLE_KIND for p in (resolved, *resolved.parents)):
                return cls("sample", path=text)
            commit = _fetched_commit(resolved, tasks, split)
            if commit:
                return cls("official", repo=MMLA_HUB_REPO, revision=commit, path=text)
            return cls("user", path=text)
        if text == MMLA_HUB_REPO:  # load_task fetched it into the default fetch folder
            from mmla.loaders.fetch import default_fetch_dir

            root = default_fetch_dir(MMLA_HUB_REPO).resolve()
            commit = _fetched_commit(root, tasks, split)
            if commit:
                return cls("official", repo=MMLA_HUB_REPO, revision=commit, path=str(root))
            return cls("user", repo=text, path=str(root))
        return cls("user", repo=text)


def _blob_hashes(path: Path) -> tuple[str, str]:
    """(git blob sha1, sha256) of a file: the Hub's etag is the first for plain files, the second for LFS."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(), hashlib.sha256(data).hexdigest()


def _fetched_commit(root: Path, tasks: Sequence[TaskSpec], split: str) -> str | None:
    """The commit every task's ``split`` file was fetched at, unchanged since; None when not proven."""
    if output_kind(root) != FETCH_KIND:
        return None
    from mmla.loaders.sources import find_source

    commits = set()
    for task in tasks:
        try:
            source = find_source(root, task)
        except ValueError:
            return None
        file = source.splits.get(split) if source.layout == "mmla_release" else None
        if file is None:
            return None
        try:
            rel = file.resolve().relative_to(root)
        except ValueError:
            return None
        # huggingface_hub's record of a download into a local_dir: commit sha, etag, timestamp (one per line)
        record = root / ".cache" / "huggingface" / "download" / f"{rel}.metadata"
        try:
            commit, etag = record.read_text(encoding="utf-8").splitlines()[:2]
        except (OSError, ValueError):
            return None
        if etag.strip() not in _blob_hashes(file):
            logger.warning("%s changed since it was fetched at %s: recorded as user data", file, commit[:12])
            return None
        commits.add(commit.strip())
    return commits.pop() if len(commits) == 1 else None


# ------------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class TaskResult:
    """One task of a run: the six metrics (percent), the ACC interval and the counts behind ACC."""

    dataset: str
    dimension: str
    n: int
    """Scored samples (skipped ones excluded)."""
    correct: int
    metrics: dict[str, float] = field(default_factory=dict)
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    num_unknown: int = 0
    num_multi: int = 0
    skipped: tuple[str, ...] = ()
    """Ids of samples whose video could not be decoded (``--skip-bad``)."""

    @property
    def accuracy(self) -> Accuracy:
        return Accuracy(self.correct, self.n)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "dimension": self.dimension,
            "n": self.n,
            "correct": self.correct,
            "num_unknown": self.num_unknown,
            "num_multi": self.num_multi,
            "metrics": dict(self.metrics),
        }
        if self.ci95:
            out["ci95"] = {k: list(v) for k, v in self.ci95.items()}
        if self.skipped:
            out["skipped"] = list(self.skipped)
        return out


@dataclass(frozen=True)
class RunResults(Mapping[str, Any]):
    """One evaluated run. Also a read-only mapping: ``run["overall"]["acc"]`` reads its results.json form."""

    model: str
    split: str
    tasks: dict[str, TaskResult]
    adapter: str | None = None
    base_model: str | None = None
    method: str = "zero-shot"
    mode: str | None = "generate"
    data: str | None = None
    """The data argument as given (path, repo id, ``in-memory``); :attr:`data_source` says what it is."""
    data_source: DataSource = DataSource("unknown")
    text_only: bool = True
    prompt_style: str = "upstream"
    label_set: str = "full"
    parse_mode: str = "aliases"
    upstream_metrics: bool = False
    created: str | None = None
    mmla_version: str | None = None
    modalities: tuple[str, ...] | None = None
    """What the model was shown (``("text", "video", "audio")``); None in files written before it was recorded
    (then ``text_only`` says text or text + video)."""
    settings: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Top-level fields this version does not know (e.g. ``selected_step`` written by training), kept as is."""
    schema_version: int = SCHEMA_VERSION
    path: Path | None = field(default=None, compare=False)
    """The file it was read from (None for a run not read from disk)."""

    # -- derived ------------------------------------------------------------------------------------
    @property
    def overall(self) -> Accuracy:
        """ACC pooled over all scored samples of all tasks."""
        return pool(t.accuracy for t in self.tasks.values())

    @property
    def dimensions(self) -> dict[str, Accuracy]:
        """ACC pooled per dimension, in the registry's dimension order."""
        by_dim: dict[str, list[Accuracy]] = {}
        for t in self.tasks.values():
            by_dim.setdefault(t.dimension, []).append(t.accuracy)
        return {d: pool(by_dim[d]) for d in DIMENSIONS if d in by_dim}

    @property
    def task_set(self) -> frozenset[str]:
        return frozenset(self.tasks)

    @property
    def method_label(self) -> str:
        return METHODS.get(self.method, self.method)

    @property
    def protocol(self) -> tuple[str, str, str]:
        """What makes two runs' scores comparable besides split, tasks and data: prompt, label set, parsing."""
        return (self.prompt_style, self.label_set, self.parse_mode)

    @property
    def protocol_text(self) -> str:
        return protocol_text(self.protocol)

    @property
    def comparability(self) -> tuple[Any, ...]:
        """Runs rank against each other only when this key is equal."""
        return (self.split, self.task_set, self.protocol, self.data_source.key)

    @property
    def display_name(self) -> str:
        """Short human name: the model's last path component (and the adapter's), with the method."""
        base = Path(self.model.rstrip("/")).name or self.model
        if self.adapter:
            base = f"{base} + {Path(str(self.adapter).rstrip('/')).name}"
        return f"{base} ({self.method_label})"

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else f"run of {self.model}"

    # -- JSON ------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The ``results.json`` body (pooled values computed from the counts)."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "mmla_version": self.mmla_version,
            "model": self.model,
            "adapter": self.adapter,
            "base_model": self.base_model,
            "method": self.method,
            "mode": self.mode,
            "split": self.split,
            "data": self.data,
            "data_source": self.data_source.to_json(),
            "text_only": self.text_only,
            "prompt_style": self.prompt_style,
            "label_set": self.label_set,
            "parse_mode": self.parse_mode,
            "upstream_metrics": self.upstream_metrics,
            "created": self.created,
            **({"modalities": list(self.modalities)} if self.modalities is not None else {}),
            "settings": dict(self.settings),
            "tasks": {k: t.to_json() for k, t in self.tasks.items()},
            "dimensions": {d: a.to_json() for d, a in self.dimensions.items()},
            "overall": self.overall.to_json(),
            "timing": dict(self.timing),
        }
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    @classmethod
    def from_json(cls, data: Any, path: str | os.PathLike[str] | None = None) -> RunResults:
        """Check a results.json body and build the run; errors name ``path`` (or ``<results>``) and the field."""
        return _parse(data, Path(path) if path is not None else None)

    def write(self, target: str | os.PathLike[str]) -> Path:
        """Write ``results.json`` atomically (``target`` is the file or the run folder); returns the file."""
        file = Path(target)
        if file.is_dir() or not file.suffix:
            file = file / RESULTS_FILENAME
        return write_json_atomic(file, self.to_json())

    # -- read-only mapping over the JSON form (scripts written against results.json keep working) ------
    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


def protocol_text(protocol: tuple[str, str, str]) -> str:
    """``prompt `upstream`, labels `full`, parsing `aliases```."""
    style, labels, parse = protocol
    return f"prompt `{style}`, labels `{labels}`, parsing `{parse}`"


def load_results(path: str | os.PathLike[str]) -> RunResults:
    """Read and check one ``results.json`` (or the run folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: pass a results.json or a run folder written by `mmla eval` (its --output)"
        )
    return _parse(read_json(path), path)


# -------------------------------------------------------------------------------------------- checking
def _fail(path: Path | None, field_name: str, problem: str) -> ResultsError:
    end = " " if problem.endswith(("?", ".")) else ". "
    return ResultsError(
        f"{path or '<results>'}: field {field_name!r} {problem}{end}Expected a results.json written by `mmla eval` "
        "(schema in docs/architecture.md)."
    )


def _number(path: Path | None, name: str, value: Any, *, percent: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, name, f"must be a finite number, got {value!r}")
    if percent and not 0 <= value <= 100:
        raise _fail(path, name, f"is {value!r}; metrics are percentages between 0 and 100")
    return float(value)


def _count(path: Path | None, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(path, name, f"must be a non-negative integer, got {value!r}")
    return value


def _optional_text(path: Path | None, data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _fail(path, name, f"must be a string, got {type(value).__name__}")
    if name in _NAMES:
        problem = unsafe_text(value)
        if problem:
            raise _fail(path, name, f"is {value!r}, which {problem}")
    return value


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 0.011  # two-decimal rounding, either way


def _parse_task(path: Path | None, key: Any, entry: Any) -> TaskResult:
    where = f"tasks.{key}"
    try:
        spec = get_task(key)
    except KeyError as err:
        raise _fail(path, where, f"is not an MMLA task: {err.args[0]}") from None
    if not isinstance(entry, dict):
        raise _fail(path, where, "must be an object")
    n = _count(path, f"{where}.n", entry.get("n"))
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or ("acc" not in metrics and n):
        raise _fail(path, f"{where}.metrics.acc", "is missing")
    values = {name: _number(path, f"{where}.metrics.{name}", v, percent=True) for name, v in metrics.items()}
    if "correct" in entry:
        correct = _count(path, f"{where}.correct", entry["correct"])
        if correct > n:
            raise _fail(path, f"{where}.correct", f"is {correct}, more than n = {n}")
    else:  # schema 1: recover the count from the two-decimal percentage (exact for n < 10,000)
        correct = round(values.get("acc", 0.0) * n / 100)
    if n and not _close(100 * correct / n, values["acc"]):
        raise _fail(
            path, f"{where}.metrics.acc", f"is {values['acc']} but {correct} correct of {n} is {100 * correct / n:.2f}"
        )
    ci95: dict[str, tuple[float, float]] = {}
    raw_ci = entry.get("ci95") or {}
    if not isinstance(raw_ci, dict):
        raise _fail(path, f"{where}.ci95", "must be an object")
    for name, bounds in raw_ci.items():
        if not isinstance(bounds, list | tuple) or len(bounds) != 2:
            raise _fail(path, f"{where}.ci95.{name}", f"must be [low, high], got {bounds!r}")
        lo, hi = (_number(path, f"{where}.ci95.{name}[{i}]", b, percent=True) for i, b in enumerate(bounds))
        ci95[name] = (lo, hi)
    dim = entry.get("dimension") or spec.dimension
    if dim not in DIMENSIONS:
        raise _fail(path, f"{where}.dimension", f"is {dim!r}; expected one of {list(DIMENSIONS)}")
    skipped = entry.get("skipped") or []
    if not isinstance(skipped, list):
        raise _fail(path, f"{where}.skipped", "must be a list of sample ids")
    return TaskResult(
        dataset=str(entry.get("dataset") or spec.dataset),
        dimension=dim,
        n=n,
        correct=correct,
        metrics=values,
        ci95=ci95,
        num_unknown=_count(path, f"{where}.num_unknown", entry.get("num_unknown", 0)),
        num_multi=_count(path, f"{where}.num_multi", entry.get("num_multi", 0)),
        skipped=tuple(str(s) for s in skipped),
    )


def _parse_source(path: Path | None, raw: Any) -> DataSource:
    if raw is None:
        return DataSource("unknown")
    if not isinstance(raw, dict):
        raise _fail(path, "data_source", "must be an object")
    kind = raw.get("kind")
    if kind not in DATA_KINDS:
        raise _fail(path, "data_source.kind", f"is {kind!r}; expected one of {list(DATA_KINDS)}")
    values = {}
    for name in ("repo", "revision", "path"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise _fail(path, f"data_source.{name}", f"must be a string, got {type(value).__name__}")
        values[name] = value or None
    if kind == "official" and not (values["repo"] and values["revision"]):
        raise _fail(path, "data_source", "says official data but does not name the repo and commit it came from")
    return DataSource(kind, **values)


def _check_pooled(path: Path | None, name: str, stored: Any, computed: Accuracy) -> None:
    if not isinstance(stored, dict) or "acc" not in stored:
        raise _fail(path, f"{name}.acc", "is missing")
    acc = _number(path, f"{name}.acc", stored["acc"], percent=True)
    if "n" in stored and stored["n"] != computed.n:
        raise _fail(path, f"{name}.n", f"is {stored['n']!r} but the tasks' counts add up to {computed.n}")
    if acc != computed.acc:  # both round(100 * correct / n, 2): equal unless pooled some other way
        raise _fail(path, f"{name}.acc", f"is {acc} but the tasks' counts pool to {computed.acc}")


_KNOWN = {
    "schema_version", "mmla_version", "model", "adapter", "base_model", "method", "mode", "split", "data",
    "data_source", "text_only", "prompt_style", "label_set", "parse_mode", "upstream_metrics", "created",
    "settings", "tasks", "dimensions", "overall", "timing", "modalities",
}  # fmt: skip
MODALITIES = ("text", "video", "audio")
"""What a model can be shown, in this order (``mmla eval --modalities``)."""


def _parse_modalities(path: Path | None, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or any(m not in MODALITIES for m in value):
        raise _fail(path, "modalities", f"must be a non-empty list of {list(MODALITIES)}, got {value!r}")
    return tuple(m for m in MODALITIES if m in value)


def _parse(data: Any, path: Path | None) -> RunResults:
    if not isinstance(data, dict):
        raise _fail(path, "<root>", "must be a JSON object")
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(path, "schema_version", f"must be a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise _fail(path, "schema_version", f"is {version}: written by a newer mmla (this one reads up to "
                    f"{SCHEMA_VERSION}); upgrade mmla")  # fmt: skip
    for name in ("model", "split"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise _fail(path, name, "is missing or not a non-empty string")
    names = {name: _optional_text(path, data, name) for name in (*_NAMES, "mode", "created", "mmla_version")}
    method = str(data.get("method") or "zero-shot").lower()
    if method not in METHODS:
        raise _fail(path, "method", f"is {method!r}; expected one of {list(METHODS)}")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise _fail(path, "tasks", "is missing or empty")
    parsed = {key: _parse_task(path, key, entry) for key, entry in tasks.items()}
    style = names["prompt_style"] or LEGACY_PROTOCOL["prompt_style"]
    raw_data = data.get("data")
    run = RunResults(
        model=str(names["model"]),
        split=str(names["split"]),
        tasks=parsed,
        adapter=names["adapter"],
        base_model=names["base_model"],
        method=method,
        mode=names["mode"],
        data=None if raw_data is None else str(raw_data),
        data_source=_parse_source(path, data.get("data_source")),
        text_only=bool(data.get("text_only", True)),
        prompt_style=LEGACY_STYLES.get(style, style),
        label_set=names["label_set"] or LEGACY_PROTOCOL["label_set"],
        parse_mode=names["parse_mode"] or LEGACY_PROTOCOL["parse_mode"],
        upstream_metrics=bool(data.get("upstream_metrics", False)),
        created=names["created"],
        mmla_version=names["mmla_version"],
        modalities=_parse_modalities(path, data.get("modalities")),
        settings=dict(data.get("settings") or {}),
        timing=dict(data.get("timing") or {}),
        extra={k: v for k, v in data.items() if k not in _KNOWN},
        schema_version=SCHEMA_VERSION,
        path=path,
    )
    if "overall" in data:
        _check_pooled(path, "overall", data["overall"], run.overall)
    dims = data.get("dimensions") or {}
    if not isinstance(dims, dict):
        raise _fail(path, "dimensions", "must be an object")
    computed = run.dimensions
    for dim, entry in dims.items():
        if dim not in computed:
            raise _fail(path, f"dimensions.{dim}", "has no task of that dimension in 'tasks'")
        _check_pooled(path, f"dimensions.{dim}", entry, computed[dim])
    return run


# ------------------------------------------------------------------------------------------ comparing
def check_compatible(runs: Sequence[RunResults], *, allow_mixed: bool = False, same_tasks: bool = True) -> list[str]:
    """Refuse to rank or merge runs scored on different splits, task sets, prompt protocols or data.

    With ``allow_mixed`` the mismatches are returned as note lines instead (the caller shows them and keeps
    the runs apart). ``same_tasks=False``: different task sets are expected (one model's runs on a card).
    """
    checks: list[tuple[str, Callable[[RunResults], Any], Callable[[RunResults], str], str]] = [
        ("prompt protocols", lambda r: r.protocol, lambda r: r.protocol_text,
         "scores under different prompts, label lists or parsing are not comparable; evaluate every model with "
         "the same --prompt-style (and label/parse options)"),
        ("splits", lambda r: r.split, lambda r: r.split,
         "scores on different splits are not comparable; evaluate every model on the same split"),
        ("data sources", lambda r: r.data_source.key, lambda r: r.data_source.describe(),
         "scores on different data are not comparable; evaluate every model on the same data"),
    ]  # fmt: skip
    if same_tasks:
        checks.append(
            ("task sets", lambda r: r.task_set, lambda r: ",".join(sorted(r.task_set)),
             "pooled ACC over different tasks is not comparable; evaluate every model on the same tasks")
        )  # fmt: skip
    notes = []
    for what, key, show, why in checks:
        if len({key(r) for r in runs}) <= 1:
            continue
        if not allow_mixed:
            detail = ", ".join(f"{r.where} ({show(r)})" for r in runs)
            raise ValueError(f"results use different {what}: {detail}. {why[0].upper()}{why[1:]}, or pass "
                             "--allow-mixed to show them apart")  # fmt: skip
        notes.append(f"Mixed {what}: {'; '.join(dict.fromkeys(show(r) for r in runs))}.")
    return notes


def pooled_over(runs: Iterable[RunResults]) -> Accuracy:
    """ACC pooled over the tasks of several runs (one model's runs on different tasks), from counts."""
    return pool(t.accuracy for r in runs for t in r.tasks.values())
