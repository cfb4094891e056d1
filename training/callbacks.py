"""Model selection by validation accuracy, as the paper does, with the evaluation code of ``mmla eval``.

At every evaluation step :class:`MMLAAccuracyCallback` scores the live model with
:func:`mmla.eval.runner.evaluate_tasks` (generate mode by default), logs ``eval_mmla_acc`` (usable as
``metric_for_best_model="eval_mmla_acc"``), keeps the best adapter in ``output_dir/best/`` (swapped in
atomically), and writes the validation curve (``validation_curve.json`` + ``.png``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from mmla.loaders.files import read_json, save_figure_atomic, write_json_atomic

logger = logging.getLogger(__name__)

BEST_DIR = "best"
CURVE_FILE = "validation_curve.json"


def replace_dir_atomic(src: Path, dst: Path) -> None:
    """Put the finished folder ``src`` at ``dst``; a reader sees the old or the new folder, never a partial one."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
    best = max(curve, key=lambda p: p["acc"])
    ax.axvline(best["step"], color="gray", lw=0.8, ls=":")
    ax.set_title(f"best ACC {best['acc']:.2f} at step {best['step']}")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


@dataclass
class MMLAAccuracyCallback(TrainerCallback):
    """Score the model on the validation split at each evaluation; keep the best adapter."""

    tasks: list[str]
    data: str | None
    processing_class: Any
    output_dir: str
    split: str = "validation"
    mode: str = "generate"
    batch_size: int = 8
    limit: int | None = None
    text_only: bool = True
    prompt_style: str = "mmla"
    method: str = "sft"
    video_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of :func:`mmla.eval.runner.evaluate_tasks` (e.g. ``num_frames``)."""
    curve: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Resume: pick up the curve and the best score written before the run was killed.
        path = Path(self.output_dir) / CURVE_FILE
        if path.is_file():
            saved = read_json(path)
            self.curve = saved.get("points", [])
            self.best = saved.get("best")

    @property
    def best_dir(self) -> Path:
        return Path(self.output_dir) / BEST_DIR

    def score(self, model: Any, step: int) -> dict[str, Any]:
        """Run the eval runner on the live model; returns the results dict of ``mmla eval``."""
        from mmla.eval.adapters import adapter_for
        from mmla.eval.runner import evaluate_tasks

        adapter = adapter_for(model, self.processing_class, video_kwargs=dict(self.video_kwargs))
        was_training = model.training
        model.eval()
        try:
            return evaluate_tasks(
                adapter,
                self.tasks,
                data=self.data,
                split=self.split,
                mode=self.mode,
                batch_size=self.batch_size,
                limit=self.limit,
                output_dir=Path(self.output_dir) / "mmla_eval" / f"step-{step}",
                text_only=self.text_only,
                prompt_style=self.prompt_style,
                method=self.method,
                show_progress=False,
                **({} if self.text_only else self.video_kwargs),
                **self.eval_kwargs,
            )
        finally:
            if was_training:
                model.train()

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if model is None or not state.is_world_process_zero:
            return
        results = self.score(model, state.global_step)
        acc = float(results["overall"]["acc"])
        point = {
            "step": state.global_step,
            "epoch": state.epoch,
            "acc": acc,
            "per_task": {k: v["metrics"]["acc"] for k, v in results["tasks"].items()},
        }
        if metrics is not None:
            point["eval_loss"] = metrics.get("eval_loss")
            # Same dict the Trainer uses for metric_for_best_model, so "eval_mmla_acc" composes with it.
            metrics["eval_mmla_acc"] = acc
        state.log_history.append({"eval_mmla_acc": acc, "epoch": state.epoch, "step": state.global_step})
        logger.info("step %d: validation ACC %.2f (%s)", state.global_step, acc, point["per_task"])
        self.curve = [p for p in self.curve if p["step"] != state.global_step] + [point]
        if self.best is None or acc > self.best["acc"]:
            self._save_best(model, results, point)
        self._write_curve()

    def _save_best(self, model: Any, results: dict[str, Any], point: dict[str, Any]) -> None:
        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".{BEST_DIR}.tmp-"))
        model.save_pretrained(tmp)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(tmp)
        write_json_atomic(tmp / "results.json", results)
        write_json_atomic(tmp / "selection.json", point)
        replace_dir_atomic(tmp, self.best_dir)
        self.best = {"step": point["step"], "epoch": point["epoch"], "acc": point["acc"]}
        logger.info("new best validation ACC %.2f at step %d -> %s", point["acc"], point["step"], self.best_dir)

    def _write_curve(self) -> None:
        out = Path(self.output_dir)
        write_json_atomic(
            out / CURVE_FILE,
            {"split": self.split, "mode": self.mode, "tasks": self.tasks, "points": self.curve, "best": self.best},
        )
        try:
            plot_curve(self.curve, out / "validation_curve.png")
        except Exception as err:
            logger.warning("could not plot the validation curve: %s", err)
