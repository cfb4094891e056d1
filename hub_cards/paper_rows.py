"""The MMLA paper's reference rows (test split, ACC %) as the cards and leaderboards use them.

The numbers live in :mod:`mmla.eval.paper_results` (one source of truth); this module only shapes
them into ranked rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmla.eval.paper_results import OVERALL, PER_TASK, paper_model

PAPER_SPLIT = "test"
PAPER_SOURCE = "Zhang et al., 2025 (MMLA, arXiv 2504.16427)"
PAPER_URL = "https://arxiv.org/abs/2504.16427"


@dataclass(frozen=True)
class PaperRow:
    """One model of the paper's Figures 2-3: overall ACC pooled over the 12 test sets."""

    model: str
    method: str  # "zero-shot" | "sft" | "it"
    overall_acc: float
    tasks: dict[str, float] = field(default_factory=dict)
    """Per-task ACC where the paper states it."""


def paper_rows(methods: tuple[str, ...] = ("zero-shot", "sft", "it")) -> list[PaperRow]:
    """The paper's rows for the given methods, best first."""
    rows = [
        PaperRow(model, method, acc, dict(PER_TASK.get(method, {}).get(model, {})))
        for method in methods
        for model, acc in OVERALL.get(method, {}).items()
    ]
    return sorted(rows, key=lambda r: -r.overall_acc)


def paper_model_name(model_id: str | None) -> str | None:
    """The paper's short name for a Hub model id or path, if the paper evaluated that model."""
    return paper_model(model_id)
