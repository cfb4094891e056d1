"""Model cards with ``model-index`` results for evaluated models and fine-tuned adapters.

Results become :class:`huggingface_hub.EvalResult` entries (one per task and metric), so the Hub
parses them into the model page's evaluation widget; the body shows the same numbers as tables,
the training hyperparameters of an adapter, and the paper's reference numbers. Every result names the
prompt style it was scored with (task name, settings table), since scores under different prompts differ.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, EvalResultEntry, ModelCard, ModelCardData, eval_result_entries_to_yaml

from mmla.eval.metrics.pooling import pool
from mmla.eval.paper_results import modality_mark, paper_comparison
from mmla.eval.results import pooled_over
from mmla.hub_cards.dataset_card import MMLA_TAG, TEMPLATES
from mmla.hub_cards.results import (
    METRIC_LABELS,
    METRICS,
    RunResults,
    check_compatible,
    check_name,
    check_repo_id,
    fmt,
    is_repo_id,
    load_results,
)
from mmla.loaders.files import read_json, write_text_atomic
from mmla.loaders.tasks import DIMENSIONS, MMLA_CITATION, TASKS

# metric key -> (EvalResult.metric_type, metric_args) as the Hub's model-index spells them.
METRIC_TYPES: dict[str, tuple[str, dict[str, str] | None]] = {
    "acc": ("accuracy", None),
    "wf1": ("f1", {"average": "weighted"}),
    "wp": ("precision", {"average": "weighted"}),
    "f1": ("f1", {"average": "macro"}),
    "r": ("recall", {"average": "macro"}),
    "p": ("precision", {"average": "macro"}),
}
RESULTS_START = "<!-- mmla-results:start -->"
RESULTS_END = "<!-- mmla-results:end -->"
# training_args.json keys worth showing (TRL SFTConfig / transformers TrainingArguments names).
HPARAM_KEYS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "warmup_ratio", "warmup_steps", "lr_scheduler_type", "weight_decay", "optim", "bf16", "fp16", "seed",
    "max_length", "packing", "completion_only_loss", "assistant_only_loss", "gradient_checkpointing",
    "metric_for_best_model", "deepspeed",
)  # fmt: skip
LORA_KEYS = ("peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "bias", "task_type", "use_dora")


def dataset_id_for(run: RunResults, task: str) -> str:
    """The Hub dataset a result refers to: the release or repo the run's data came from, else ``mmla/<task>``."""
    source = run.data_source
    if source.kind in ("official", "user") and source.repo and is_repo_id(source.repo):
        return source.repo
    return run.data if run.data and is_repo_id(run.data) else f"mmla/{task}"


def eval_results(run: RunResults, *, model_name: str | None = None) -> list[EvalResult]:
    """One :class:`EvalResult` per task and metric of a run (values in percent, as the paper reports)."""
    out: list[EvalResult] = []
    mark = modality_mark(run)  # a run fed audio is named apart from the same model's text+video results
    method = f"{run.method_label}, {run.prompt_style} prompt" + (f", {mark}" if mark else "")
    for key, entry in run.tasks.items():
        spec = TASKS.get(key)
        dataset_name = spec.dataset if spec else str(entry.get("dataset") or key)
        dim = entry.dimension.replace("_", " ")
        for metric in METRICS:
            if metric not in entry.metrics:
                continue
            metric_type, args = METRIC_TYPES[metric]
            out.append(
                EvalResult(
                    task_type="text-classification" if run.text_only else "video-classification",
                    task_name=f"{dataset_name} {dim} ({method})",
                    dataset_type=dataset_id_for(run, key),
                    dataset_name=dataset_name,
                    dataset_config=key,
                    dataset_split=run.split,
                    metric_type=metric_type,
                    metric_name=METRIC_LABELS[metric],
                    metric_value=round(float(entry.metrics[metric]), 2),
                    metric_args=args,
                )
            )
    return out


def eval_result_files(run: RunResults) -> dict[str, str]:
    """``.eval_results/<task>.yaml`` contents (the Hub's newer format, notes §3.2): ACC per task."""
    files = {}
    mark = modality_mark(run)  # a run fed audio says what the model was shown
    for key, entry in run.tasks.items():
        if not entry.n:
            continue  # every sample skipped: no ACC to report
        result = EvalResultEntry(
            dataset_id=dataset_id_for(run, key),
            task_id=key,
            value=round(float(entry.metrics["acc"]), 2),
            notes=f"{run.method_label}, {run.split} split, {run.protocol_text.replace('`', '')}, ACC (%), "
            f"data: {run.data_source.describe().replace('`', '')}, "
            + (f"shown: {mark}, " if mark else "")
            + f"mmla {run.mmla_version or ''}".strip(),
        )
        files[f".eval_results/{key}.yaml"] = yaml.safe_dump(eval_result_entries_to_yaml([result]), sort_keys=False)
    return files


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = read_json(path)
    return data if isinstance(data, dict) else None


def training_details(adapter_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """LoRA and trainer hyperparameters from an adapter folder (JSON files only; never unpickles)."""
    if adapter_dir is None:
        return {}
    root = Path(adapter_dir)
    lora = _read_json(root / "adapter_config.json") or {}
    args = _read_json(root / "training_args.json") or {}
    details = {
        "base_model": lora.get("base_model_name_or_path"),
        "lora": {k: lora[k] for k in LORA_KEYS if lora.get(k) is not None},
        "training": {k: args[k] for k in HPARAM_KEYS if args.get(k) not in (None, "", [])},
    }
    return details


def _kv_table(values: Mapping[str, Any]) -> str:
    if not values:
        return ""
    rows = [f"| `{k}` | {', '.join(map(str, v)) if isinstance(v, list | tuple) else v} |" for k, v in values.items()]
    return "\n".join(["| hyperparameter | value |", "|---|---|", *rows])


def _cell(value: Any) -> str:
    """A value safe inside a markdown table cell and code span."""
    return " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")


def _results_tables(runs: Sequence[RunResults]) -> tuple[str, str]:
    mixed = len({r.protocol for r in runs}) > 1
    head = "| task | dataset | dimension | n | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " | ACC 95% CI |"
    lines = [head, "|---|---|---|---:|" + "---:|" * (len(METRICS) + 1)]
    if mixed:
        lines = [head + " prompt |", lines[1] + "---|"]
    for run in runs:
        for key, entry in run.tasks.items():
            ci = entry.ci95.get("acc")
            ci_text = f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "—"
            cells = " | ".join(fmt(entry.metrics.get(m)) for m in METRICS)
            dim = entry.dimension.replace("_", " ")
            extra = f" {run.protocol_text} |" if mixed else ""
            lines.append(f"| `{key}` | {entry.dataset} | {dim} | {entry.n} | {cells} | {ci_text} |{extra}")
    by_dim: dict[str, list[Any]] = {}
    for run in runs:
        for entry in run.tasks.values():
            by_dim.setdefault(entry.dimension, []).append(entry.accuracy)
    overall = pooled_over(runs)  # from counts, also across runs
    order = [d for d in DIMENSIONS if d in by_dim]
    dim_lines = ["| dimension | n | ACC |", "|---|---:|---:|"]
    for d in order:
        acc = pool(by_dim[d])
        dim_lines.append(f"| {d.replace('_', ' ')} | {acc.n} | {fmt(acc.acc)} |")
    dim_lines.append(f"| **overall (pooled)** | {overall.n} | **{fmt(overall.acc)}** |")
    return "\n".join(lines), "\n".join(dim_lines)


def _repro_flags(run: RunResults) -> str:
    """``mmla eval`` options that reproduce the run's prompt protocol (as far as results.json records it)."""
    flags = [f"--data {run.data_source.repo}"] if run.data_source.kind == "official" else []
    flags += [f"--prompt-style {run.prompt_style}"]
    flags += ["--upstream-labels"] if run.label_set == "upstream" else []
    flags += [f"--parse-mode {run.parse_mode}"]
    flags += [f"--modalities {','.join(run.modalities)}"] if run.modalities and "audio" in run.modalities else []
    return "".join(f" {f}" for f in flags)


def _check_same_model(runs: Sequence[RunResults]) -> None:
    ids = {(r.model, r.adapter, r.method) for r in runs}
    if len(ids) > 1:
        detail = ", ".join(f"{r.where} ({r.display_name})" for r in runs)
        raise ValueError(f"a model card describes one model, but these results come from several: {detail}")
    seen: dict[str, str] = {}
    for run in runs:
        for key in run.tasks:
            if key in seen:
                raise ValueError(f"task {key!r} appears in both {seen[key]} and {run.where}; pass each task once")
            seen[key] = run.where


def model_card(
    results: RunResults | str | os.PathLike[str] | Sequence[RunResults | str | os.PathLike[str]],
    *,
    adapter_dir: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    model_name: str | None = None,
    license: str | None = None,
    allow_mixed: bool = False,
    with_paper: bool = True,
) -> ModelCard:
    """Build the card of an evaluated model or a fine-tuned adapter from one or more runs of it."""
    if repo_id is not None:
        check_repo_id(repo_id)
    if model_name is not None:
        check_name(model_name, "model name")
    items = [results] if isinstance(results, RunResults | str | os.PathLike) else list(results)
    runs = [r if isinstance(r, RunResults) else load_results(r) for r in items]
    if not runs:
        raise ValueError("no results given for the model card")
    _check_same_model(runs)
    notes = check_compatible(runs, allow_mixed=allow_mixed, same_tasks=False)
    run = runs[0]
    details = training_details(adapter_dir or (run.adapter if run.adapter and Path(run.adapter).is_dir() else None))
    base = run.base_model or details.get("base_model") or (run.model if run.adapter else None)
    base_model = base if is_repo_id(base) else None
    name = model_name or (repo_id.split("/")[-1] if repo_id else None) or run.display_name
    model_index_name = f"{name} ({run.method_label})" if run.method_label not in name else name
    results_list = [e for r in runs for e in eval_results(r)]
    languages = sorted({TASKS[t].language for r in runs for t in r.tasks if t in TASKS}) or None
    datasets = sorted({dataset_id_for(r, t) for r in runs for t in r.tasks})
    is_adapter = bool(details.get("lora")) or bool(run.adapter)
    card_data = ModelCardData(
        model_name=model_index_name,
        base_model=base_model,
        library_name="peft" if is_adapter else "transformers",
        license=license,
        language=languages,
        datasets=datasets,
        tags=[MMLA_TAG, "multimodal-language-analysis", run.method, *(["lora", "trl"] if is_adapter else [])],
        pipeline_tag="text-generation" if run.text_only else "video-text-to-text",
        eval_results=results_list,
    )
    table, dim_table = _results_tables(runs)

    def joined(values: Sequence[Any]) -> str | None:
        present = [str(v) for v in dict.fromkeys(values) if v is not None]
        return ", ".join(present) or None

    settings = {
        "split": run.split,
        "mode": run.mode,
        "prompt style": joined([r.prompt_style for r in runs]),
        "label set": joined([r.label_set for r in runs]),
        "parse mode": joined([r.parse_mode for r in runs]),
        "text only": run.text_only,
        "modalities": joined([",".join(r.modalities) if r.modalities else None for r in runs]),
        "data": run.data,
        "data source": joined([r.data_source.describe() for r in runs]),
        "model": run.model,
        "adapter": run.adapter,
        "created": run.created,
        "mmla version": run.mmla_version,
    }
    results_section = "\n".join(
        [
            RESULTS_START,
            "## Results",
            "",
            f"MMLA {run.method_label} results on the **{run.split}** split (percent; ACC pooled over all samples).",
            "",
            table,
            "",
            dim_table,
            *(["", *[f"† {n}" for n in notes]] if notes else []),
            *(["", "### Comparison with the paper", "", paper_comparison(runs)] if with_paper else []),
            RESULTS_END,
        ]
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "model_card.md"),
        title=name,
        repo_id=repo_id,
        run=run,
        method=run.method_label,
        base=base,
        is_adapter=is_adapter,
        results_section=results_section,
        settings=[(k, _cell(v)) for k, v in settings.items() if v not in (None, "")],
        lora_table=_kv_table(details.get("lora", {})),
        training_table=_kv_table(details.get("training", {})),
        citation=MMLA_CITATION,
        task_keys=",".join(t for r in runs for t in r.tasks),
        repro_flags=_repro_flags(run),
    )


def write_model_card(path: str | os.PathLike[str], results: Any, **kwargs: Any) -> Path:
    """Write :func:`model_card` to ``path`` atomically."""
    return write_text_atomic(Path(path), str(model_card(results, **kwargs)))


def _result_key(result: EvalResult) -> tuple[Any, ...]:
    """What identifies a score: dataset, config, split and metric (not the free-text task name)."""
    args = json.dumps(result.metric_args, sort_keys=True) if result.metric_args else None
    return (
        result.dataset_type,
        result.dataset_config,
        result.dataset_split,
        result.metric_type,
        result.metric_name,
        args,
    )


def merge_results(existing: ModelCard, new: ModelCard) -> ModelCard:
    """Update an existing card's model-index and results section with a new card's, keeping the rest.

    Entries for the same task, dataset, split and metric are replaced; others are kept, so results
    pushed for other tasks or splits survive.
    """
    data = existing.data
    new_results = list(new.data.eval_results or [])
    replaced = {_result_key(n) for n in new_results}
    kept = [old for old in (data.eval_results or []) if _result_key(old) not in replaced]
    data.eval_results = kept + new_results
    if not data.model_name:
        data.model_name = new.data.model_name
    tags = list(data.tags or [])
    data.tags = tags + [t for t in (new.data.tags or []) if t not in tags]
    section = new.text[new.text.index(RESULTS_START) : new.text.index(RESULTS_END) + len(RESULTS_END)]
    text = existing.text
    if RESULTS_START in text and RESULTS_END in text:
        text = text[: text.index(RESULTS_START)] + section + text[text.index(RESULTS_END) + len(RESULTS_END) :]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{text}")
