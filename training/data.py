"""Training rows for SFT (one task) and instruction tuning (a mixture of tasks).

Rows are TRL's *conversational prompt-completion* format, built with the very prompt of zero-shot
evaluation (:func:`mmla.eval.prompts.build_messages` / :func:`build_target`), so TRL computes the loss on
the answer tokens only (``completion_only_loss``) and a model is trained on exactly what it is evaluated on:

    {"prompt": [{"role": "user", "content": "<the prompt, style upstream_sft by default>"}],
     "completion": [{"role": "assistant", "content": "<dimension>: <label>"}],
     "task": "mintrec", "label_name": "inform", "id": "...", "video": ...}

Each IT row keeps its own dimension and label list (they are in its prompt).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset, DatasetDict, concatenate_datasets

from mmla.eval.prompts import DEFAULT_TRAIN_STYLE, build_messages, build_target
from mmla.loaders.tasks import TaskSpec, resolve_tasks

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """What a run trains and selects on."""

    train: Dataset
    eval: dict[str, Dataset] = field(default_factory=dict)
    """task key -> validation rows in the same format (used for the eval loss)."""
    tasks: list[TaskSpec] = field(default_factory=list)
    """Every task of the run (the model is selected on all of them, trained on those with a train split)."""
    train_counts: dict[str, int] = field(default_factory=dict)
    """task key -> rows of that task in ``train`` after mixing."""


def to_prompt_completion(
    ds: Dataset, task: TaskSpec, *, style: str = DEFAULT_TRAIN_STYLE, with_video: bool = False
) -> Dataset:
    """Map a task split (loader rows) to conversational prompt-completion rows."""
    names = ds.features["label"].names if hasattr(ds.features.get("label"), "names") else None

    def convert(row):
        label = names[row["label"]] if names is not None else task.canonical(row["label"]) or row["label"]
        messages = build_messages(task, row["text"], num_videos=1 if with_video else 0, style=style)
        target = build_target(task, label)
        # MLLM chat templates iterate typed content blocks; text templates take a plain string.
        content: Any = [{"type": "text", "text": target}] if with_video else target
        return {
            "prompt": messages,
            "completion": [{"role": "assistant", "content": content}],
            "task": task.key,
            "label_name": label,
            "id": str(row.get("id", "")),
        }

    keep = {"video"} if with_video else set()
    remove = [c for c in ds.column_names if c not in keep]
    out = ds.map(convert, remove_columns=remove, desc=f"prompts {task.key}")
    if with_video and "video" not in out.column_names:
        raise ValueError(
            f"task {task.key!r}: the data has no `video` column; pass text_only=True (LLMs) or build the "
            f"data with videos (`mmla data build --videos ...`)"
        )
    return out


def _resample(ds: Dataset, n: int, seed: int) -> Dataset:
    """``n`` rows of ``ds``: a shuffled subset if smaller, whole repeats plus a shuffled remainder if larger."""
    if n <= len(ds):
        return ds.shuffle(seed=seed).select(range(n))
    reps, rest = divmod(n, len(ds))
    parts = [ds] * reps + ([ds.shuffle(seed=seed).select(range(rest))] if rest else [])
    return concatenate_datasets(parts)


def mixture_sizes(
    sizes: dict[str, int],
    *,
    max_per_task: int | None = None,
    min_per_task: int | None = None,
    temperature: float | None = None,
) -> dict[str, int]:
    """Rows per task in an IT mixture.

    Default: every row once (proportional to size, as the paper's union of training sets). ``temperature``
    T resamples task i to ``total * n_i^(1/T) / sum_j n_j^(1/T)`` rows (T > 1 flattens towards uniform);
    then ``min_per_task`` up-samples and ``max_per_task`` caps.
    """
    out = dict(sizes)
    if temperature is not None:
        if temperature <= 0:
            raise ValueError(f"mix_temperature must be > 0, got {temperature}")
        total = sum(sizes.values())
        weights = {k: n ** (1.0 / temperature) for k, n in sizes.items() if n > 0}
        norm = sum(weights.values())
        out = {k: max(1, round(total * w / norm)) for k, w in weights.items()}
    if min_per_task is not None:
        out = {k: max(n, min_per_task) for k, n in out.items()}
    if max_per_task is not None:
        out = {k: min(n, max_per_task) for k, n in out.items()}
    return out


def _limit(ds: Dataset, n: int | None, seed: int) -> Dataset:
    return ds if n is None or n >= len(ds) else ds.shuffle(seed=seed).select(range(n))


def load_training_data(
    tasks: str | Sequence[str],
    data: str | None = None,
    *,
    text_only: bool = True,
    style: str = DEFAULT_TRAIN_STYLE,
    eval_split: str | None = "validation",
    max_per_task: int | None = None,
    min_per_task: int | None = None,
    temperature: float | None = None,
    limit_train: int | None = None,
    limit_eval: int | None = None,
    seed: int = 42,
    **load_kwargs,
) -> TrainingData:
    """Build the training mixture and the per-task validation rows.

    One task is SFT; several are IT (concatenated then shuffled unless a mixing option is given). A task
    without a train split is only evaluated (IT) or an error (SFT); a task without ``eval_split`` is an
    error unless ``eval_split`` is None (no model selection).
    """
    from mmla.loaders import load_task

    specs = resolve_tasks(tasks)
    if not specs:
        raise ValueError(f"no task selected by {tasks!r}")
    with_video = not text_only
    per_task: dict[str, Dataset] = {}
    evals: dict[str, Dataset] = {}
    for task in specs:
        dd = load_task(task.key, data, text_only=text_only, **load_kwargs)
        if not isinstance(dd, DatasetDict):
            raise ValueError(f"load_task({task.key!r}) returned a single split; expected a DatasetDict")
        where = data or f"the Hub release of {task.key}"
        if eval_split is not None and eval_split not in dd:
            raise ValueError(
                f"task {task.key!r} in {where} has no {eval_split!r} split (splits: {sorted(dd)}); the best "
                f"checkpoint is selected on it. Add the split, choose another with --eval_metric_split, or pass "
                f"--eval_metric_split none to train without selection."
            )
        if eval_split is not None:
            evals[task.key] = to_prompt_completion(
                _limit(dd[eval_split], limit_eval, seed), task, style=style, with_video=with_video
            )
        if "train" not in dd:
            if len(specs) == 1:
                raise ValueError(f"task {task.key!r} in {where} has no 'train' split (splits: {sorted(dd)})")
            logger.warning("task %s has no train split in %s: evaluated only, not trained on", task.key, where)
            continue
        per_task[task.key] = to_prompt_completion(
            _limit(dd["train"], limit_train, seed), task, style=style, with_video=with_video
        )
    if not per_task:
        raise ValueError(f"none of the tasks {[t.key for t in specs]} has a 'train' split in {data}")
    sizes = mixture_sizes(
        {k: len(v) for k, v in per_task.items()},
        max_per_task=max_per_task,
        min_per_task=min_per_task,
        temperature=temperature,
    )
    parts = [_resample(per_task[k], sizes[k], seed) if sizes[k] != len(per_task[k]) else per_task[k] for k in per_task]
    train = concatenate_datasets(parts).shuffle(seed=seed) if len(parts) > 1 else parts[0]
    logger.info("training rows per task: %s (total %d)", sizes, len(train))
    return TrainingData(train=train, eval=evals, tasks=specs, train_counts=sizes)
