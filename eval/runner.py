"""Batched, cached and resumable zero-shot evaluation over MMLA tasks.

Per task: rows -> prompts (``mmla.eval.prompts``) -> length-sorted batches -> adapter
inputs -> ``generate`` or ``rank`` (``mmla.eval.scoring``) -> parsed labels -> metrics.
Each finished batch is appended to ``output_dir/predictions/<task>.jsonl`` and flushed,
so a killed run resumes where it stopped; rows whose prompt hash (prompt text + every
setting that changes the answer) matches are reused. Rows are keyed by id within a task, so
ids must be unique (checked before anything is computed). Generated answers are re-parsed
with the run's parse mode, so ``--parse-mode`` changes no hash.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmla.eval.adapters.base import ModelAdapter
from mmla.eval.parsing import MULTI, PARSE_MODES, UNKNOWN, parse_answer
from mmla.eval.prompts import DEFAULT_STYLE, LABEL_SETS, build_messages, build_target, normalize_style
from mmla.loaders.files import (
    claim_output_dir,
    mark_output_dir,
    output_kind,
    read_json,
    write_json_atomic,
    write_text_atomic,
)
from mmla.loaders.tasks import DIMENSIONS, TaskSpec, get_task, resolve_tasks
from mmla.loaders.video import FrameSample

__all__ = [
    "EvalSettings",
    "claim_eval_output",
    "evaluate_tasks",
    "load_eval_data",
    "read_predictions",
    "write_json_atomic",
]

logger = logging.getLogger(__name__)
MMLA_VERSION = "0.1.0"
SKIPPED = "skipped"
OUTPUT_KIND = "mmla eval"


@dataclass(frozen=True)
class EvalSettings:
    """Everything that changes a model's answer besides the prompt text (part of each row's hash)."""

    model: str
    adapter: str | None = None
    mode: str = "generate"
    max_new_tokens: int = 16
    text_only: bool = True
    num_frames: int | None = None
    fps: float | None = None
    prompt_style: str = DEFAULT_STYLE
    label_set: str = "full"
    use_chat_template: bool = True

    def fingerprint(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class _Record:
    index: int  # row index in the split
    id: str
    text: str
    gold: str
    prompt: str
    hash: str
    messages: list[dict[str, Any]] = field(repr=False)
    task: TaskSpec | None = field(default=None, repr=False)
    ds: Any = field(default=None, repr=False)


# ------------------------------------------------------------------------------------------------ io
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


# ---------------------------------------------------------------------------------------------- output
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


def _gold(task: TaskSpec, ds: Any, value: Any) -> str:
    if isinstance(value, int):
        feature = ds.features.get("label")
        names = getattr(feature, "names", None) or task.labels
        return task.canonical(names[value]) or names[value]
    canon = task.canonical(str(value))
    if canon is None:
        raise ValueError(f"task {task.key}: gold label {value!r} is not one of {list(task.labels)}")
    return canon


def _hash(settings: EvalSettings, prompt: str) -> str:
    return hashlib.sha256(f"{settings.fingerprint()}\n{prompt}".encode()).hexdigest()[:16]


def _records(adapter: ModelAdapter, task: TaskSpec, ds: Any, settings: EvalSettings) -> list[_Record]:
    table = ds.select_columns(["id", "text", "label"]).to_dict()
    nvid = 0 if settings.text_only else 1
    out = []
    for i, (rid, text, label) in enumerate(zip(table["id"], table["text"], table["label"], strict=True)):
        messages = build_messages(
            task, text, num_videos=nvid, style=settings.prompt_style, label_set=settings.label_set
        )
        prompt = adapter.prompt_text(messages)
        out.append(
            _Record(i, str(rid), text, _gold(task, ds, label), prompt, _hash(settings, prompt), messages, task, ds)
        )
    return out


def _context_length(adapter: ModelAdapter) -> int | None:
    """The model's context window (``max_position_embeddings`` of its config or text config), if it says."""
    cfg = getattr(adapter.model, "config", None)
    for c in (cfg, getattr(cfg, "text_config", None)):
        n = getattr(c, "max_position_embeddings", None)
        if isinstance(n, int) and n > 0:
            return n
    return None


def _check_context(adapter: ModelAdapter, task: TaskSpec, recs: list[_Record], settings: EvalSettings) -> None:
    """A prompt (plus its answer) beyond the model's context is an error naming the rows, before any batch runs.

    Positions past the context give garbage (RoPE) or an index error (learned positions): never silently.
    Video placeholders count as the text tokens they are before the processor expands them.
    """
    ctx = _context_length(adapter)
    if ctx is None or not recs:
        return
    tok = adapter.tokenizer
    lengths = [len(ids) for ids in tok([r.prompt for r in recs], add_special_tokens=False)["input_ids"]]
    if settings.mode == "generate":
        extra, what = settings.max_new_tokens, f"--max-new-tokens {settings.max_new_tokens}"
    else:
        targets = tok([build_target(task, lab) for lab in task.labels], add_special_tokens=False)["input_ids"]
        extra, what = max(len(t) for t in targets), "the longest label"
    over = [(r, n) for r, n in zip(recs, lengths, strict=True) if n + extra > ctx]
    if over:
        shown = ", ".join(f"{r.id!r} ({n} tokens)" for r, n in over[:5])
        more = f" and {len(over) - 5} more" if len(over) > 5 else ""
        raise ValueError(
            f"task {task.key}: the prompt of row {shown}{more} plus {what} exceeds the model's context of {ctx} "
            f"tokens; shorten or drop that utterance, or use a model with a longer context"
        )


def _frames(ds: Any, rec: _Record, task: TaskSpec, settings: EvalSettings) -> FrameSample:
    """Frames with their sampling metadata: processors that encode time (Qwen2.5-VL, Qwen3-VL) need the real fps."""
    from mmla.loaders.video import sample_frames

    try:
        video = ds[rec.index]["video"]
        if video is None:
            raise ValueError("no video")
        return sample_frames(video, num_frames=settings.num_frames, fps=settings.fps, return_metadata=True)
    except Exception as err:
        raise _BadVideo(f"task {task.key}, sample {rec.id!r}: cannot decode its video ({err})") from err


class _BadVideo(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------- batches
def _is_oom(err: BaseException) -> bool:
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def _score_batch(
    adapter: ModelAdapter,
    batch: list[_Record],
    videos: list[list[torch.Tensor]] | None,
    settings: EvalSettings,
    candidates: dict[str, list[list[int]]],
    parse_mode: str = "aliases",
) -> list[dict[str, Any]]:
    """Score one batch; in generate mode it may mix tasks, in rank mode it holds one task (one label set)."""
    from mmla.eval.scoring import generate_answers, rank_scores

    inputs = adapter.build_inputs([r.messages for r in batch], videos, padding_side="left")
    rows = []
    if settings.mode == "generate":
        answers = generate_answers(adapter, inputs, max_new_tokens=settings.max_new_tokens)
        for rec, ans in zip(batch, answers, strict=True):
            rows.append({"raw": ans, "pred": parse_answer(rec.task, ans, parse_mode)})
    else:
        task = batch[0].task
        assert task is not None and all(r.task is task for r in batch)
        scores = rank_scores(adapter, inputs, candidates[task.key])
        for s in scores.tolist():
            best = max(range(len(s)), key=s.__getitem__)
            rows.append(
                {
                    "raw": build_target(task, task.labels[best]),
                    "pred": task.labels[best],
                    "scores": {lab: round(v, 4) for lab, v in zip(task.labels, s, strict=True)},
                }
            )
    return [{"id": r.id, "hash": r.hash, **row, "gold": r.gold} for r, row in zip(batch, rows, strict=True)]


def _run_pending(
    adapter: ModelAdapter,
    pending: list[_Record],
    settings: EvalSettings,
    batch_size: int,
    sink_for: Callable[[str], Path],
    *,
    skip_bad: bool,
    show_progress: bool,
    on_batch_end: Callable[[str, int], None] | None,
    parse_mode: str = "aliases",
) -> dict[str, list[dict[str, Any]]]:
    """Score ``pending`` records (of any tasks), appending each batch's rows to its task's file."""
    from contextlib import ExitStack

    from tqdm.auto import tqdm

    candidates: dict[str, list[list[int]]] = {}
    if settings.mode == "rank":
        from mmla.eval.scoring import candidate_token_ids

        for task in {r.task.key: r.task for r in pending}.values():
            candidates[task.key] = candidate_token_ids(adapter, [build_target(task, lab) for lab in task.labels])
        # One label set per batch: group by task, longest first within each.
        pending = sorted(pending, key=lambda r: (r.task.key, -len(r.prompt)))
    else:
        # Longest first across tasks: full batches with little padding; an OOM shows up on the first batch.
        pending = sorted(pending, key=lambda r: -len(r.prompt))
    out: dict[str, list[dict[str, Any]]] = {}
    bar = tqdm(total=len(pending), desc="mmla eval", unit="samples", disable=not show_progress, dynamic_ncols=True)
    pos, nbatch = 0, 0
    with ExitStack() as stack:
        files: dict[str, Any] = {}
        while pos < len(pending):
            batch = pending[pos : pos + batch_size]
            if settings.mode == "rank":
                batch = [r for r in batch if r.task is batch[0].task]
            videos = None
            # (record, row) pairs: ids repeat across tasks in a mixed batch, so rows are routed by record, not id.
            rows: list[tuple[_Record, dict[str, Any]]] = []
            batch_ok = batch
            if not settings.text_only:
                videos, batch_ok = [], []
                for rec in batch:
                    try:
                        videos.append([_frames(rec.ds, rec, rec.task, settings)])
                        batch_ok.append(rec)
                    except _BadVideo as err:
                        if not skip_bad:
                            raise RuntimeError(f"{err}; pass --skip-bad to skip and record such samples") from None
                        logger.warning("%s; skipped", err)
                        rows.append(
                            (rec, {"id": rec.id, "hash": rec.hash, "raw": "", "pred": SKIPPED, "gold": rec.gold})
                        )
            try:
                if batch_ok:
                    rows.extend(
                        zip(
                            batch_ok,
                            _score_batch(adapter, batch_ok, videos, settings, candidates, parse_mode),
                            strict=True,
                        )
                    )
            except Exception as err:
                if not _is_oom(err) or batch_size == 1:
                    raise
                batch_size = max(1, len(batch) // 2)
                logger.warning("out of memory on a batch of %d; retrying with batch size %d", len(batch), batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            for rec, row in rows:
                key = rec.task.key
                if key not in files:
                    path = sink_for(key)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    files[key] = stack.enter_context(open(path, "a", encoding="utf-8"))
                files[key].write(json.dumps(row, ensure_ascii=False) + "\n")
                out.setdefault(key, []).append(row)
            for f in files.values():
                f.flush()
            pos += len(batch)
            nbatch += 1
            bar.update(len(batch))
            if on_batch_end is not None:
                on_batch_end(batch[0].task.key, nbatch)
    bar.close()
    return out


# ---------------------------------------------------------------------------------------------- main
def evaluate_tasks(
    adapter: ModelAdapter,
    tasks: str | Sequence[str | TaskSpec] | None,
    data: Any = None,
    split: str = "test",
    *,
    mode: str = "generate",
    batch_size: int = 8,
    limit: int | None = None,
    output_dir: str | os.PathLike = "mmla_eval",
    text_only: bool | None = None,
    videos: str | os.PathLike | None = None,
    num_frames: int | None = 8,
    fps: float | None = None,
    prompt_style: str = DEFAULT_STYLE,
    label_set: str = "full",
    parse_mode: str = "aliases",
    max_new_tokens: int = 16,
    skip_bad: bool = False,
    upstream_metrics: bool = False,
    method: str = "zero-shot",
    model_name: str | None = None,
    base_model: str | None = None,
    adapter_path: str | None = None,
    n_bootstrap: int = 1000,
    show_progress: bool = True,
    on_batch_end: Callable[[str, int], None] | None = None,
    loaded: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate ``adapter`` on ``tasks`` and write ``output_dir/results.json`` (schema in docs/architecture.md).

    ``data``: a release folder / repo id for ``mmla.loaders.load_task``, or a mapping task key ->
    ``Dataset``/path; ``videos`` is the folder of restricted corpora's clips. ``loaded``: the splits
    :func:`load_eval_data` already returned (``mmla eval`` checks the data before loading the model);
    ``data`` is then only recorded. ``text_only`` defaults to ``not adapter.is_multimodal``.
    ``prompt_style`` / ``label_set`` / ``parse_mode``: see :mod:`mmla.eval.prompts` and
    :mod:`mmla.eval.parsing`; all three are recorded in the results. Under ``accelerate launch`` the
    pending samples are split across processes and only process 0 writes.
    """
    if mode not in ("generate", "rank"):
        raise ValueError(f"unknown mode {mode!r}; use generate or rank")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1 (got {batch_size})")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 (got {limit}); pass None to evaluate every row")
    if mode == "generate" and max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1 (got {max_new_tokens})")
    prompt_style = normalize_style(prompt_style)
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set!r}; choose one of {', '.join(LABEL_SETS)}")
    if parse_mode not in PARSE_MODES:
        raise ValueError(f"unknown parse mode {parse_mode!r}; choose one of {', '.join(PARSE_MODES)}")
    if tasks is None or isinstance(tasks, str):
        task_list = resolve_tasks(tasks)
    else:
        task_list = [t if isinstance(t, TaskSpec) else get_task(t) for t in tasks]
    if not task_list:
        raise ValueError(f"no task selected by {tasks!r}")
    text_only = (not adapter.is_multimodal) if text_only is None else text_only
    if not text_only and not adapter.is_multimodal:
        raise ValueError(f"{adapter.model_id} is a text-only model; evaluate it with --text-only")
    if fps is not None:
        num_frames = None
    settings = EvalSettings(
        model=model_name or adapter.model_id,
        adapter=adapter_path,
        mode=mode,
        max_new_tokens=max_new_tokens if mode == "generate" else 0,
        text_only=text_only,
        num_frames=None if text_only else num_frames,
        fps=None if text_only else fps,
        prompt_style=prompt_style,
        label_set=label_set,
        use_chat_template=adapter.use_chat_template,
    )
    state = _dist_state()
    is_main = state is None or state.is_main_process
    out_dir = Path(output_dir)
    if is_main:
        out_dir = claim_eval_output(output_dir, option="output_dir")
        out_dir.mkdir(parents=True, exist_ok=True)
        if output_kind(out_dir) != OUTPUT_KIND:
            mark_output_dir(out_dir, OUTPUT_KIND)  # first, so that a killed run is recognised and resumed
    results: dict[str, Any] = {
        "mmla_version": MMLA_VERSION,
        "model": settings.model,
        "adapter": adapter_path,
        "base_model": base_model,
        "method": method,
        "mode": mode,
        "split": split,
        "data": data
        if isinstance(data, str | type(None))
        else str(data)
        if isinstance(data, os.PathLike)
        else "in-memory",
        "text_only": text_only,
        "prompt_style": prompt_style,
        "label_set": label_set,
        "parse_mode": parse_mode,  # applies to generated answers (rank mode picks a label directly)
        "upstream_metrics": upstream_metrics,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": asdict(settings),
        "tasks": {},
    }
    pooled: dict[str, list[tuple[list[str], list[str]]]] = {}
    t_start = time.perf_counter()
    pred_dir = out_dir / "predictions"
    given = dict(loaded or {})
    missing = [t for t in task_list if t.key not in given]
    if missing:
        given.update(load_eval_data(missing, data, split, text_only=text_only, videos=videos, limit=limit, state=state))
    per_task: list[tuple[TaskSpec, list[_Record], dict[str, dict[str, Any]]]] = []
    pending: list[_Record] = []
    for task in task_list:
        recs = _records(adapter, task, given[task.key], settings)
        _check_context(adapter, task, recs, settings)
        cached = _read_cache(pred_dir / f"{task.key}.jsonl") if is_main else {}
        if state is not None and state.num_processes > 1:
            cached = _broadcast(cached, state)
        reuse = {r.id: cached[r.id] for r in recs if r.id in cached and cached[r.id].get("hash") == r.hash}
        todo = [r for r in recs if r.id not in reuse]
        if reuse:
            logger.info("%s: reusing %d cached predictions, %d to compute", task.key, len(reuse), len(todo))
        per_task.append((task, recs, reuse))
        pending.extend(todo)
    new_rows: dict[str, list[dict[str, Any]]] = {}
    if pending:
        kw = {"skip_bad": skip_bad, "show_progress": show_progress and is_main, "on_batch_end": on_batch_end,
              "parse_mode": parse_mode}  # fmt: skip
        if state is not None and state.num_processes > 1:
            from accelerate.utils import gather_object

            rank, world = state.process_index, state.num_processes
            # Deal the length-sorted samples round-robin so every process gets a similar mix of long and short ones
            # (contiguous chunks would give one process all of a long-prompt task).
            mine = sorted(pending, key=lambda r: -len(r.prompt))[rank::world]
            mine_rows = _run_pending(adapter, mine, settings, batch_size,
                                     lambda k: pred_dir / f"{k}.part{rank}.jsonl", **kw)  # fmt: skip
            for part in gather_object([mine_rows]):
                for key, rows in part.items():
                    new_rows.setdefault(key, []).extend(rows)
        else:
            new_rows = _run_pending(adapter, pending, settings, batch_size, lambda k: pred_dir / f"{k}.jsonl", **kw)
    computed = len(pending)
    for task, recs, reuse in per_task:
        by_id = {**reuse, **{r["id"]: r for r in new_rows.get(task.key, [])}}
        rows = [by_id[r.id] for r in recs]
        if mode == "generate":  # cached answers may have been parsed in the other mode
            for row in rows:
                if row["pred"] != SKIPPED:
                    row["pred"] = parse_answer(task, row["raw"], parse_mode)
        if is_main:
            _rewrite_ordered(pred_dir / f"{task.key}.jsonl", rows)
        results["tasks"][task.key] = _task_result(task, rows, upstream_metrics, n_bootstrap)
        scored = [r for r in rows if r["pred"] != SKIPPED]
        pooled.setdefault(task.dimension, []).append(([r["pred"] for r in scored], [r["gold"] for r in scored]))
    from mmla.eval.metrics import pooled_accuracy

    results["dimensions"] = {d: pooled_accuracy(pooled[d]) for d in DIMENSIONS if d in pooled}
    results["overall"] = pooled_accuracy([pt for d in pooled.values() for pt in d])
    elapsed = time.perf_counter() - t_start
    results["timing"] = {"seconds": round(elapsed, 2), "samples_computed": computed,
                         "samples_per_second": round(computed / elapsed, 3) if computed and elapsed else None,
                         "num_processes": 1 if state is None else state.num_processes}  # fmt: skip
    if is_main:
        write_json_atomic(out_dir / "results.json", results)
    return results


def _task_result(task: TaskSpec, rows: list[dict[str, Any]], upstream: bool, n_bootstrap: int) -> dict[str, Any]:
    from mmla.eval.metrics import bootstrap_ci, compute_metrics

    scored = [r for r in rows if r["pred"] != SKIPPED]
    preds, golds = [r["pred"] for r in scored], [r["gold"] for r in scored]
    res: dict[str, Any] = {
        "dataset": task.dataset,
        "dimension": task.dimension,
        "n": len(scored),
        "num_unknown": preds.count(UNKNOWN),
        "num_multi": preds.count(MULTI),
    }
    if scored:
        res["metrics"] = compute_metrics(task, preds, golds, upstream_compatible=upstream)
        if n_bootstrap:
            res["ci95"] = bootstrap_ci(preds, golds, task.labels, n_resamples=n_bootstrap)
    else:
        res["metrics"] = {}
    skipped = [r["id"] for r in rows if r["pred"] == SKIPPED]
    if skipped:
        res["skipped"] = skipped
    return res


def _rewrite_ordered(path: Path, rows: list[dict[str, Any]]) -> None:
    """The final predictions file: one row per sample in split order (process parts merged and removed)."""
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    for part in path.parent.glob(f"{path.stem}.part*.jsonl"):
        part.unlink()


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """The task's cached rows, including per-process parts left by a killed multi-process run."""
    rows: dict[str, dict[str, Any]] = {}
    for part in sorted(path.parent.glob(f"{path.stem}.part*.jsonl")):
        rows.update(read_predictions(part))
    rows.update(read_predictions(path))
    return rows


def _dist_state() -> Any:
    """The accelerate state under a multi-process launch (``accelerate launch``/``torchrun``), else ``None``.

    Without CUDA (or with ``ACCELERATE_USE_CPU``) it is a gloo CPU group: a plain ``PartialState()`` would
    see no GPU, fall back to a single process, and every process would evaluate everything and write.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    state = PartialState(cpu=not torch.cuda.is_available() or parse_flag_from_env("ACCELERATE_USE_CPU"))
    if state.num_processes != world:
        raise RuntimeError(
            f"WORLD_SIZE={world} but accelerate set up {state.num_processes} process(es) "
            f"({state.distributed_type}); launch with `accelerate launch` or `torchrun`"
        )
    return state


def _broadcast(cached: dict[str, dict[str, Any]], state: Any) -> dict[str, dict[str, Any]]:
    """Process 0 read (and repaired) the cache, plus any per-process parts a killed run left; share it."""
    from accelerate.utils import broadcast_object_list

    obj = [cached]
    broadcast_object_list(obj, from_process=0)
    return obj[0]
