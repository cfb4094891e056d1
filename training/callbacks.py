"""Model selection by validation accuracy, as the paper does, with the evaluation code of ``mmla eval``.

At every evaluation :class:`MMLAAccuracyCallback` scores the live model on the validation split with
:func:`mmla.eval.runner.evaluate_tasks` (generate mode by default) and puts ``eval_mmla_acc`` (and
``eval_mmla_acc_<task>``) into the evaluation metrics, through ``trainer.log`` so that every logger sees
them. ``training/sft.py`` sets ``metric_for_best_model="eval_mmla_acc"`` and ``load_best_model_at_end``, so
the Trainer keeps the best checkpoint (``save_total_limit`` never deletes it) and loads it at the end; no
private copy of the adapter is kept. The callback also writes the validation curve
(``validation_curve.json`` + ``.png``) on the main process.

Multi-process runs (``torchrun`` / ``accelerate launch``): every process takes part in scoring. The runner
deals the validation rows round-robin to the processes and gathers the predictions, so every process gets
the same results dict and the same accuracy; the main process alone writes. Under DeepSpeed ZeRO-3 the
parameters are gathered for generation with TRL's ``unwrap_model_for_generation``, as TRL's own callbacks do.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from mmla.eval.arguments import EvalArguments
from mmla.eval.results import RunResults
from mmla.loaders.files import read_json, save_figure_atomic, write_json_atomic

logger = logging.getLogger(__name__)

METRIC = "eval_mmla_acc"
"""The Trainer metric (``metric_for_best_model``) holding validation ACC (%), pooled over the run's tasks."""
CURVE_FILE = "validation_curve.json"
EVAL_DIR = "mmla_eval"
"""``output_dir/mmla_eval/step-N/``: the ``mmla eval`` output (results.json, predictions) of each evaluation."""


def plot_curve(curve: list[dict[str, Any]], path: Path) -> None:
    """Validation ACC (and eval loss when logged) against the training step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [p["step"] for p in curve]
    ax.plot(steps, [p["acc"] for p in curve], "o-", label="validation ACC")
    ax.set_xlabel("step")
    ax.set_ylabel("ACC (%)")
    losses = [p.get("eval_loss") for p in curve]
    if all(v is not None for v in losses):
        ax2 = ax.twinx()
        ax2.plot(steps, losses, "s--", color="tab:red", label="eval loss")
        ax2.set_ylabel("eval loss")
    best = best_point(curve)
    if best is not None:
        ax.axvline(best["step"], color="gray", lw=0.8, ls=":")
        ax.set_title(f"best ACC {best['acc']:.2f} at step {best['step']}")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def best_point(curve: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first point with the highest ACC: the Trainer's rule (a later tie is not an improvement)."""
    best = None
    for p in sorted(curve, key=lambda p: p["step"]):
        if best is None or p["acc"] > best["acc"]:
            best = p
    return best


@dataclass
class MMLAAccuracyCallback(TrainerCallback):
    """Score the model on the validation split at each evaluation, in every process; report ``eval_mmla_acc``."""

    eval_args: EvalArguments
    """What ``mmla eval`` is given (tasks, data, split, mode, batch size, limit, prompt style, frames): the same
    dataclass, so validation scoring is exactly ``mmla eval``; its ``output_dir`` is replaced per step."""
    processing_class: Any
    output_dir: str
    method: str = "sft"
    eval_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of :func:`mmla.eval.runner.evaluate_tasks` (e.g. ``num_frames``)."""
    trainer: Any = None
    """The Trainer (set by ``build_trainer``): its wrapped model and accelerator for generation, its ``log``."""
    curve: list[dict[str, Any]] = field(default_factory=list)
    results: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    """The results.json body (``RunResults.to_json()``) of each evaluation of this process' run, by step."""

    @property
    def split(self) -> str:
        return self.eval_args.split

    @property
    def tasks(self) -> list[str]:
        return [t for t in self.eval_args.tasks.split(",") if t]

    def __post_init__(self) -> None:
        # Resume: pick up the curve written before the run was killed (points past the checkpoint are redone).
        path = Path(self.output_dir) / CURVE_FILE
        if path.is_file():
            self.curve = read_json(path).get("points", [])

    @property
    def best(self) -> dict[str, Any] | None:
        """Best point of the curve so far (``step``, ``epoch``, ``acc``)."""
        p = best_point(self.curve)
        return None if p is None else {"step": p["step"], "epoch": p.get("epoch"), "acc": p["acc"]}

    def eval_dir(self, step: int) -> Path:
        return Path(self.output_dir) / EVAL_DIR / f"step-{step}"

    @contextlib.contextmanager
    def _generation_model(self, model: Any, args: TrainingArguments | None) -> Iterator[Any]:
        """The bare model for ``generate``: unwrapped from DDP, with ZeRO-3 parameters gathered (TRL's helper)."""
        trainer = self.trainer
        if trainer is None or getattr(trainer, "accelerator", None) is None:
            yield model
            return
        from trl.models.utils import unwrap_model_for_generation

        gc_kwargs = getattr(args, "gradient_checkpointing_kwargs", None) if args is not None else None
        with unwrap_model_for_generation(
            trainer.model_wrapped, trainer.accelerator, gradient_checkpointing_kwargs=gc_kwargs
        ) as unwrapped:
            yield unwrapped

    def score(self, model: Any, step: int, **kwargs: Any) -> dict[str, Any]:
        """:meth:`score_run` as the results.json body (``RunResults.to_json()``), which training extends and writes."""
        return self.score_run(model, step, **kwargs).to_json()

    def score_run(
        self,
        model: Any,
        step: int,
        *,
        args: TrainingArguments | None = None,
        output_dir: Path | None = None,
        split: str | None = None,
    ) -> RunResults:
        """Run the eval runner on the live model (collective: every process calls it); its ``RunResults``.

        Output in ``output_dir`` (default ``mmla_eval/step-<step>``); ``split`` overrides the validation split.
        """
        from mmla.eval.adapters import adapter_for
        from mmla.eval.runner import evaluate_tasks

        where = output_dir if output_dir is not None else self.eval_dir(step)
        eval_args = replace(self.eval_args, output_dir=str(where), split=split or self.eval_args.split)
        kwargs = {**eval_args.runner_kwargs(), "text_only": eval_args.text_only, **self.eval_kwargs}
        with self._generation_model(model, args) as gen_model:
            adapter = adapter_for(gen_model, self.processing_class, video_kwargs=eval_args.video_kwargs())
            was_training = gen_model.training
            gen_model.eval()
            try:
                return evaluate_tasks(adapter, **kwargs, method=self.method, show_progress=False)
            finally:
                if was_training:
                    gen_model.train()

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if model is None:
            return
        step = state.global_step
        run = self.score_run(model, step, args=args)  # every process: its shard, then gathered
        self.results[step] = run.to_json()
        acc = run.overall.acc
        per_task = {k: t.metrics.get("acc") for k, t in run.tasks.items()}
        logs: dict[str, float] = {METRIC: acc}
        if len(per_task) > 1:
            logs.update({f"{METRIC}_{k}": float(v) for k, v in per_task.items() if v is not None})
        if metrics is not None:
            # The dict the Trainer then reads for metric_for_best_model (and returns from evaluate()).
            metrics.update(logs)
        if self.trainer is not None:
            self.trainer.log(logs)  # log_history and every report_to logger
        else:
            state.log_history.append({**logs, "epoch": state.epoch, "step": step})
        point = {"step": step, "epoch": state.epoch, "acc": acc, "per_task": per_task}
        if metrics is not None and metrics.get("eval_loss") is not None:
            point["eval_loss"] = metrics["eval_loss"]
        self.curve = sorted([p for p in self.curve if p["step"] != step] + [point], key=lambda p: p["step"])
        if state.is_world_process_zero:
            logger.info("step %d: validation ACC %.2f (%s)", step, acc, per_task)
            self._write_curve()

    def _write_curve(self) -> None:
        out = Path(self.output_dir)
        write_json_atomic(
            out / CURVE_FILE,
            {
                "split": self.split,
                "mode": self.eval_args.mode,
                "tasks": self.tasks,
                "points": self.curve,
                "best": self.best,
            },
        )
        try:
            plot_curve(self.curve, out / "validation_curve.png")
        except Exception as err:
            logger.warning("could not plot the validation curve: %s", err)
