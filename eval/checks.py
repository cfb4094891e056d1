"""Checks that refuse a run before it costs anything: settings, the data (before the model loads) and
prompt lengths against the model's context (before any batch runs).

Each failure is one ``ValueError``/``KeyError`` whose message names the task, row or option and what to do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmla.eval.adapters.base import ModelAdapter
from mmla.eval.parsing import PARSE_MODES
from mmla.eval.prompts import LABEL_SETS, build_target
from mmla.eval.samples import EvalSettings, Sample
from mmla.loaders.tasks import TaskSpec

__all__ = ["check_context", "check_settings", "load_eval_data"]


def check_settings(
    *, mode: str, batch_size: int, limit: int | None, max_new_tokens: int, label_set: str, parse_mode: str
) -> None:
    """Values :func:`mmla.eval.runner.evaluate_tasks` refuses outright."""
    if mode not in ("generate", "rank"):
        raise ValueError(f"unknown mode {mode!r}; use generate or rank")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1 (got {batch_size})")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 (got {limit}); pass None to evaluate every row")
    if mode == "generate" and max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1 (got {max_new_tokens})")
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set!r}; choose one of {', '.join(LABEL_SETS)}")
    if parse_mode not in PARSE_MODES:
        raise ValueError(f"unknown parse mode {parse_mode!r}; choose one of {', '.join(PARSE_MODES)}")


# ---------------------------------------------------------------------------------------------- data
def _load_split(task: TaskSpec, data: Any, split: str, text_only: bool, videos: Any = None) -> Any:
    """A ``datasets.Dataset`` of one task's split, from a path/repo (via ``mmla.loaders.load_task``) or given.

    A folder holding one sub-folder per task key (``<data>/mintrec/...``) is resolved per task.
    """
    if isinstance(data, Mapping):
        if task.key not in data:
            raise KeyError(f"no data given for task {task.key!r} (have: {', '.join(data)})")
        data = data[task.key]
    if isinstance(data, Mapping) and split in data:  # a DatasetDict
        data = data[split]
    if hasattr(data, "column_names"):  # a datasets.Dataset (or any table with that interface)
        return data
    from mmla.loaders import load_task

    if data is not None and (Path(data) / task.key).is_dir():
        data = Path(data) / task.key
    return load_task(
        task.key, data=None if data is None else str(data), split=split, text_only=text_only, videos=videos
    )


def _check_rows(task: TaskSpec, ds: Any, split: str, where: str) -> None:
    """Columns, at least one row, unique ids: predictions are keyed by id, so two rows may never share one."""
    cols = [c for c in ("id", "text", "label") if c in ds.column_names]
    if cols != ["id", "text", "label"]:
        raise ValueError(f"task {task.key} ({where}): rows need id, text and label columns (have {ds.column_names})")
    if len(ds) == 0:
        raise ValueError(f"task {task.key}: the {split} split of {where} has no rows; nothing to evaluate")
    first: dict[str, int] = {}
    dups: dict[str, list[int]] = {}
    for i, rid in enumerate(ds["id"]):
        key = str(rid)
        if key in first:
            dups.setdefault(key, [first[key]]).append(i)
        else:
            first[key] = i
    if dups:
        shown = "; ".join(f"{k!r} (rows {', '.join(map(str, v))})" for k, v in list(dups.items())[:5])
        more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
        raise ValueError(
            f"task {task.key}: duplicate ids in the {split} split of {where}: {shown}{more}. Each row needs its "
            f"own id (predictions are stored by id); fix the data or rebuild it with `mmla data build`"
        )


def load_eval_data(
    tasks: Sequence[TaskSpec],
    data: Any,
    split: str,
    *,
    text_only: bool,
    videos: str | os.PathLike | None = None,
    limit: int | None = None,
    state: Any = None,
) -> dict[str, Any]:
    """Each task's split (first ``limit`` rows), checked: columns, not empty, unique ids.

    ``mmla eval`` calls it before the model loads, so bad data costs no model load.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 (got {limit}); pass None to evaluate every row")
    where = (
        "the given data"
        if data is not None and not isinstance(data, str | os.PathLike)
        else str(data or "the Hub release")
    )
    out: dict[str, Any] = {}
    for task in tasks:
        with state.main_process_first() if state is not None else contextlib.nullcontext():
            ds = _load_split(task, data, split, text_only, videos)  # process 0 builds the datasets cache first
        if limit is not None:
            ds = ds.select(range(min(limit, len(ds))))
        _check_rows(task, ds, split, where)
        out[task.key] = ds
    return out


# ---------------------------------------------------------------------------------------------- context
def _context_length(adapter: ModelAdapter) -> int | None:
    """The model's context window (``max_position_embeddings`` of its config or text config), if it says."""
    cfg = getattr(adapter.model, "config", None)
    for c in (cfg, getattr(cfg, "text_config", None)):
        n = getattr(c, "max_position_embeddings", None)
        if isinstance(n, int) and n > 0:
            return n
    return None


def check_context(adapter: ModelAdapter, task: TaskSpec, samples: list[Sample], settings: EvalSettings) -> None:
    """A prompt (plus its answer) beyond the model's context is an error naming the rows, before any batch runs.

    Positions past the context give garbage (RoPE) or an index error (learned positions): never silently.
    Video placeholders count as the text tokens they are before the processor expands them.
    """
    ctx = _context_length(adapter)
    if ctx is None or not samples:
        return
    tok = adapter.tokenizer
    lengths = [len(ids) for ids in tok([s.prompt for s in samples], add_special_tokens=False)["input_ids"]]
    if settings.mode == "generate":
        extra, what = settings.max_new_tokens, f"--max-new-tokens {settings.max_new_tokens}"
    else:
        targets = tok([build_target(task, lab) for lab in task.labels], add_special_tokens=False)["input_ids"]
        extra, what = max(len(t) for t in targets), "the longest label"
    over = [(s, n) for s, n in zip(samples, lengths, strict=True) if n + extra > ctx]
    if over:
        shown = ", ".join(f"{s.id!r} ({n} tokens)" for s, n in over[:5])
        more = f" and {len(over) - 5} more" if len(over) > 5 else ""
        raise ValueError(
            f"task {task.key}: the prompt of row {shown}{more} plus {what} exceeds the model's context of {ctx} "
            f"tokens; shorten or drop that utterance, or use a model with a longer context"
        )
