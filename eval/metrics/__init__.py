"""MMLA metrics: per task (the ``evaluate`` module's computation), pooled accuracy, bootstrap CIs.

Pooling (:mod:`.pooling`) is pure Python; numpy, scikit-learn and ``evaluate`` are imported only by the
functions that need them, so reading results files (cards, leaderboards) does not pay for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmla.eval.metrics.pooling import Accuracy, pool, pooled_accuracy
from mmla.loaders.tasks import TaskSpec, get_task

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "METRIC_NAMES",
    "METRIC_PATH",
    "Accuracy",
    "bootstrap_ci",
    "bootstrap_distribution",
    "compute_metrics",
    "load_metric",
    "pool",
    "pooled_accuracy",
]

METRIC_PATH = str(Path(__file__).parent / "mmla_metrics")
"""Folder of the ``evaluate`` module: ``evaluate.load(METRIC_PATH)`` works offline."""


def load_metric():
    """The ``evaluate`` module (loaded from this package, no network)."""
    import evaluate

    return evaluate.load(METRIC_PATH)


def compute_metrics(
    task: TaskSpec | str, predictions: Sequence[str], references: Sequence[str], upstream_compatible: bool = False
) -> dict[str, float]:
    """ACC, WF1, WP, F1, R, P (percent) over the task's own labels; ``unknown``/``multi`` count as wrong."""
    from mmla.eval.metrics.mmla_metrics.mmla_metrics import classification_metrics

    spec = get_task(task) if isinstance(task, str) else task
    return classification_metrics(predictions, references, labels=spec.labels, upstream_compatible=upstream_compatible)


def __getattr__(name: str) -> Any:
    if name == "METRIC_NAMES":  # defined in the self-contained ``evaluate`` module (which imports evaluate)
        from mmla.eval.metrics.mmla_metrics.mmla_metrics import METRIC_NAMES

        return METRIC_NAMES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def bootstrap_distribution(
    predictions: Sequence[str],
    references: Sequence[str],
    labels: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Resample indices ``(n_resamples, n)`` and ACC / macro F1 / weighted F1 (fractions) of each resample.

    Each resample's confusion matrix is one ``bincount``; F1 per class follows from it
    exactly as scikit-learn computes it with ``labels=`` and ``zero_division=0``.
    """
    import numpy as np

    n, k = len(references), len(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    y_true = np.array([index[r] for r in references])
    y_pred = np.array([index.get(p, k) for p in predictions])  # k = any non-class answer
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_resamples, n))
    t, p = y_true[draws], y_pred[draws]
    out: dict[str, np.ndarray] = {"acc": (t == p).mean(1)}
    cm = np.bincount(
        (np.arange(n_resamples)[:, None] * (k * (k + 1)) + t * (k + 1) + p).ravel(), minlength=n_resamples * k * (k + 1)
    ).reshape(n_resamples, k, k + 1)
    tp = cm[:, np.arange(k), np.arange(k)].astype(float)
    support = cm.sum(2).astype(float)
    predicted = cm[:, :, :k].sum(1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    out["f1"] = f1.mean(1)
    out["wf1"] = (f1 * support).sum(1) / n
    return draws, out


def bootstrap_ci(
    predictions: Sequence[str],
    references: Sequence[str],
    labels: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    metrics: Sequence[str] = ("acc", "f1", "wf1"),
) -> dict[str, list[float]]:
    """Seeded percentile bootstrap CIs (percent) of ACC, macro F1 and weighted F1."""
    if not references:
        return {}
    import numpy as np

    _, out = bootstrap_distribution(predictions, references, labels, n_resamples=n_resamples, seed=seed)
    alpha = (1 - confidence) / 2 * 100
    return {
        m: [round(float(v) * 100, 2) for v in np.percentile(out[m], [alpha, 100 - alpha])] for m in metrics if m in out
    }
