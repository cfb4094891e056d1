"""Zero-shot evaluation over MMLA tasks: the orchestrator.

Per task: rows -> samples (prompt + hash, ``mmla.eval.samples``) -> checks (``mmla.eval.checks``) ->
cached answers reused (``mmla.eval.cache``) -> the rest scored in length-sorted batches
(``mmla.eval.batching``), dealt across processes under a launcher (``mmla.eval.distributed``) ->
parsed labels -> metrics -> ``results.json``. Rows are keyed by id within a task, so ids must be unique
(checked before anything is computed). Generated answers are re-parsed with the run's parse mode, so
``--parse-mode`` changes no hash.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mmla.eval.adapters.base import ModelAdapter
from mmla.eval.batching import score_samples
from mmla.eval.cache import claim_eval_output, prepare_eval_output, read_cache, read_predictions, rewrite_ordered
from mmla.eval.checks import check_context, check_settings, load_eval_data
from mmla.eval.distributed import broadcast_from_main, dist_state, gather_rows, shard_by_length
from mmla.eval.packed import resolve_prefill
from mmla.eval.parsing import MULTI, UNKNOWN, parse_answer
from mmla.eval.prompts import DEFAULT_STYLE, normalize_style
from mmla.eval.results import RESULTS_FILENAME, DataSource, RunResults, TaskResult, check_result_names
from mmla.eval.samples import SKIPPED, EvalSettings, Sample, build_samples
from mmla.loaders.tasks import TaskSpec, get_task, resolve_tasks

__all__ = [
    "EvalSettings",
    "claim_eval_output",
    "evaluate_tasks",
    "load_eval_data",
    "read_predictions",
]

logger = logging.getLogger(__name__)
UNNAMED_MODEL = "unnamed-model"
"""Recorded for a model given in memory without a name (``model_name=``) or a config path."""


def mmla_version() -> str:
    """The installed ``mmla`` version; in a bare checkout (the repo on ``PYTHONPATH``, as on a GPU machine) the
    one its ``pyproject.toml`` declares, else ``"unknown"``."""
    try:
        return importlib.metadata.version("mmla")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:  # tomllib is 3.11+; the [project] table's version is the file's first top-level `version = "..."`
        text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return found.group(1) if found else "unknown"


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
    modalities: str | Sequence[str] | None = None,
    allow_silent: bool = False,
    packed_prefill: str = "auto",
) -> RunResults:
    """Evaluate ``adapter`` on ``tasks``, write ``output_dir/results.json`` and return it as :class:`RunResults`.

    ``data``: a release folder / repo id for ``mmla.loaders.load_task``, or a mapping task key ->
    ``Dataset``/path; ``videos`` is the folder of restricted corpora's clips. ``loaded``: the splits
    :func:`load_eval_data` already returned (``mmla eval`` checks the data before loading the model);
    ``data`` is then only recorded. ``text_only`` defaults to ``not adapter.is_multimodal``.
    ``prompt_style`` / ``label_set`` / ``parse_mode``: see :mod:`mmla.eval.prompts` and
    :mod:`mmla.eval.parsing`; all three are recorded in the results. ``modalities``: what the model is
    shown (``"text,video,audio"``, a subset the adapter supports; default: all it supports, text only with
    ``text_only``); ``allow_silent`` feeds silence for clips without an audio track (counted in the results). ``packed_prefill``
    (auto/on/off, :func:`mmla.eval.packed.resolve_prefill`): text models' prompts prefilled packed without padding,
    recorded in ``settings`` (the request) and ``timing["prefill"]`` (what ran). Under ``accelerate launch`` the
    pending samples are split across processes and only process 0 writes.
    """
    check_settings(mode=mode, batch_size=batch_size, limit=limit, max_new_tokens=max_new_tokens,
                   label_set=label_set, parse_mode=parse_mode)  # fmt: skip
    prompt_style = normalize_style(prompt_style)
    if tasks is None or isinstance(tasks, str):
        task_list = resolve_tasks(tasks)
    else:
        task_list = [t if isinstance(t, TaskSpec) else get_task(t) for t in tasks]
    if not task_list:
        raise ValueError(f"no task selected by {tasks!r}")
    shows = resolve_modalities(adapter, modalities, text_only)
    text_only = shows == ("text",)
    if fps is not None:
        num_frames = None
    settings = EvalSettings(
        model=model_name or adapter.model_id,
        adapter=adapter_path,
        mode=mode,
        max_new_tokens=max_new_tokens if mode == "generate" else 0,
        text_only=text_only,
        num_frames=num_frames if "video" in shows else None,
        fps=fps if "video" in shows else None,
        prompt_style=prompt_style,
        label_set=label_set,
        use_chat_template=adapter.use_chat_template,
        modalities=None if shows in (("text",), ("text", "video")) else ",".join(shows),
        allow_silent=allow_silent and "audio" in shows,
    )
    check_result_names(model=settings.model, adapter=adapter_path, base_model=base_model)  # before any work
    prefill = resolve_prefill(adapter, packed_prefill)  # text models: prompts packed without padding (eval/packed.py)
    state = dist_state()
    is_main = state is None or state.is_main_process
    out_dir = prepare_eval_output(output_dir) if is_main else Path(output_dir)
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if state is not None:
        state.wait_for_everyone()  # the clock starts with every process here, not with the first one to load
    t_start = time.perf_counter()
    pred_dir = out_dir / "predictions"
    given = dict(loaded or {})
    missing = [t for t in task_list if t.key not in given]
    if missing:
        given.update(load_eval_data(missing, data, split, text_only=text_only, videos=videos, limit=limit, state=state))
    source = DataSource.detect(data, task_list, split)  # where the rows just loaded came from
    per_task: list[tuple[TaskSpec, list[Sample], dict[str, dict[str, Any]]]] = []
    pending: list[Sample] = []
    multi = state is not None and state.num_processes > 1
    for task in task_list:
        samples = build_samples(adapter, task, given[task.key], settings)
        check_context(adapter, task, samples, settings)
        cached = read_cache(pred_dir / f"{task.key}.jsonl") if is_main else {}
        if multi:
            cached = broadcast_from_main(cached, state)
        reuse = {s.id: cached[s.id] for s in samples if s.id in cached and cached[s.id].get("hash") == s.hash}
        todo = [s for s in samples if s.id not in reuse]
        if reuse:
            logger.info("%s: reusing %d cached predictions, %d to compute", task.key, len(reuse), len(todo))
        per_task.append((task, samples, reuse))
        pending.extend(todo)
    new_rows: dict[str, list[dict[str, Any]]] = {}
    if pending:
        kw = {"skip_bad": skip_bad, "show_progress": show_progress and is_main, "on_batch_end": on_batch_end,
              "parse_mode": parse_mode, "prefill": prefill}  # fmt: skip
        if multi:
            rank = state.process_index
            mine = shard_by_length(pending, state, lambda s: len(s.prompt))
            mine_rows = score_samples(adapter, mine, settings, batch_size,
                                      lambda k: pred_dir / f"{k}.part{rank}.jsonl", **kw)  # fmt: skip
            new_rows = gather_rows(mine_rows)
        else:
            new_rows = score_samples(adapter, pending, settings, batch_size, lambda k: pred_dir / f"{k}.jsonl", **kw)
    computed = len(pending)
    task_results: dict[str, TaskResult] = {}
    silent: dict[str, int] = {}
    for task, samples, reuse in per_task:
        by_id = {**reuse, **{r["id"]: r for r in new_rows.get(task.key, [])}}
        rows = [by_id[s.id] for s in samples]
        if mode == "generate":  # cached answers may have been parsed in the other mode
            for row in rows:
                if row["pred"] != SKIPPED:
                    row["pred"] = parse_answer(task, row["raw"], parse_mode)
        if is_main:
            rewrite_ordered(pred_dir / f"{task.key}.jsonl", rows)
        task_results[task.key] = _task_result(task, rows, upstream_metrics, n_bootstrap)
        if any(r.get("silent_audio") for r in rows):
            silent[task.key] = sum(1 for r in rows if r.get("silent_audio"))
    if silent:
        logger.warning(
            "clips without an audio track, fed silence (--allow-silent): %s",
            ", ".join(f"{k}: {n}" for k, n in silent.items()),
        )  # fmt: skip
    elapsed = time.perf_counter() - t_start
    run = RunResults(
        model=settings.model or UNNAMED_MODEL,
        split=split,
        tasks=task_results,
        adapter=adapter_path,
        base_model=base_model,
        method=method,
        mode=mode,
        data=data if isinstance(data, str | type(None)) else str(data) if isinstance(data, os.PathLike) else "in-memory",
        data_source=source,
        text_only=text_only,
        prompt_style=prompt_style,
        label_set=label_set,
        parse_mode=parse_mode,  # applies to generated answers (rank mode picks a label directly)
        upstream_metrics=upstream_metrics,
        created=created,
        mmla_version=mmla_version(),
        modalities=shows,
        settings={**asdict(settings), "packed_prefill": packed_prefill},
        timing={"seconds": round(elapsed, 2), "samples_computed": computed,
                "samples_per_second": round(computed / elapsed, 3) if computed and elapsed else None,
                "num_processes": 1 if state is None else state.num_processes, "prefill": prefill.describe()},
        extra={"silent_audio": silent} if silent else {},
    )  # fmt: skip
    if is_main:
        run.write(out_dir / RESULTS_FILENAME)
    return run


def supported_modalities(adapter: ModelAdapter) -> tuple[str, ...]:
    """What the adapter's family can be shown: its ``modalities``, else text + video (MLLMs) or text."""
    own = getattr(adapter, "modalities", None)
    if own:
        return tuple(own)
    return ("text", "video") if adapter.is_multimodal else ("text",)


def resolve_modalities(
    adapter: ModelAdapter, requested: str | Sequence[str] | None, text_only: bool | None = None
) -> tuple[str, ...]:
    """The modalities a run shows the model; a one-line error for one its family does not take.

    Default: ``("text",)`` with ``text_only``, else everything the family supports (video MLLMs: text and
    video, as before audio existed; Omni: text, video and audio; Qwen2-Audio: text and audio).
    """
    from mmla.eval.arguments import parse_modalities

    supported = supported_modalities(adapter)
    if requested is None:
        if text_only:
            return ("text",)
        if text_only is False and supported == ("text",):
            raise ValueError(f"{adapter.model_id} is a text-only model; evaluate it with --text-only")
        return supported
    shows = parse_modalities(requested)
    missing = [m for m in shows if m not in supported]
    if missing:
        raise ValueError(
            f"model {adapter.model_id or UNNAMED_MODEL!r} ({type(adapter).__name__}) takes {','.join(supported)}; "
            f"it cannot be shown {','.join(missing)} (--modalities {','.join(shows)})"
        )
    return shows


def _task_result(task: TaskSpec, rows: list[dict[str, Any]], upstream: bool, n_bootstrap: int) -> TaskResult:
    """Metrics, ACC interval and counts of one task's rows (skipped samples listed, not scored)."""
    from mmla.eval.metrics import bootstrap_ci, compute_metrics

    scored = [r for r in rows if r["pred"] != SKIPPED]
    preds, golds = [r["pred"] for r in scored], [r["gold"] for r in scored]
    metrics = compute_metrics(task, preds, golds, upstream_compatible=upstream) if scored else {}
    ci95 = bootstrap_ci(preds, golds, task.labels, n_resamples=n_bootstrap) if scored and n_bootstrap else {}
    return TaskResult(
        dataset=task.dataset,
        dimension=task.dimension,
        n=len(scored),
        correct=sum(p == g for p, g in zip(preds, golds, strict=True)),
        metrics=metrics,
        ci95={k: (lo, hi) for k, (lo, hi) in ci95.items()},
        num_unknown=preds.count(UNKNOWN),
        num_multi=preds.count(MULTI),
        skipped=tuple(r["id"] for r in rows if r["pred"] == SKIPPED),
    )
