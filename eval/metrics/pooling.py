"""Pooled accuracy: the paper's overall and per-dimension score, from counts.

Pooled ACC is ``sum(correct) / sum(n)`` over the tasks, never a mean (or an ``n``-weighted mean) of the
tasks' rounded percentages. Pure Python, so that results files can be read (cards, leaderboards) without
importing scikit-learn or ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Accuracy", "pool", "pooled_accuracy"]


@dataclass(frozen=True)
class Accuracy:
    """``correct`` of ``n`` samples; ``acc`` is the percentage with two decimals, as results.json stores it."""

    correct: int
    n: int

    def __post_init__(self) -> None:
        if not 0 <= self.correct <= self.n:
            raise ValueError(f"correct must be between 0 and n (got {self.correct} of {self.n})")

    @property
    def acc(self) -> float:
        return round(100 * self.correct / self.n, 2) if self.n else 0.0

    def to_json(self) -> dict[str, float | int]:
        """``{"acc", "n"}``, the ``overall`` / ``dimensions`` entries of results.json."""
        return {"acc": self.acc, "n": self.n}


def pool(parts: Iterable[Accuracy]) -> Accuracy:
    """The pooled accuracy of several tasks (or runs): counts are added, then divided once."""
    correct = n = 0
    for part in parts:
        correct += part.correct
        n += part.n
    return Accuracy(correct, n)


def pooled_accuracy(per_task: Iterable[tuple[Sequence[str], Sequence[str]]]) -> dict[str, float | int]:
    """Accuracy over all samples of all tasks pooled (the paper's overall score): ``{"acc", "n"}``."""
    return pool(
        Accuracy(sum(p == r for p, r in zip(preds, refs, strict=True)), len(refs)) for preds, refs in per_task
    ).to_json()
