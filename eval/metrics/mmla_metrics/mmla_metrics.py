"""MMLA classification metrics as an ``evaluate`` module: ACC, WF1, WP, F1, R, P.

Self-contained (numpy, scikit-learn, datasets, evaluate only) so that
``evaluate.load("<path to this folder>")`` works offline.
"""

from __future__ import annotations

from collections.abc import Sequence

import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

_DESCRIPTION = """\
The six metrics of the MMLA benchmark, in percent with two decimals, as scikit-learn computes them:
acc (accuracy), wf1 / wp (weighted F1 / precision), f1 / r / p (macro F1 / recall / precision).
Predictions and references are label strings. Pass ``labels=`` (the task's own label list): macro and
weighted averages are then taken over those labels only, so parser outputs such as "unknown" or "multi"
count as wrong but are never classes. ``upstream_compatible=True`` reproduces the upstream MMLA script,
which omits ``labels=`` (every distinct string, pseudo-labels included, becomes a class).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): parsed labels, or "unknown" / "multi".
    references (list of str): gold labels.
    labels (list of str, optional): the task's labels; defaults to the sorted distinct references.
    upstream_compatible (bool): reproduce the upstream evaluation (no ``labels=``). Default False.
Returns:
    dict with acc, wf1, wp, f1, r, p (percent, 2 decimals).
Examples:
    >>> m = evaluate.load("eval/metrics/mmla_metrics")
    >>> m.compute(predictions=["joy", "unknown"], references=["joy", "anger"], labels=["joy", "anger"])["acc"]
    50.0
"""

_CITATION = """@article{zhang2025mmla,
  title={Can Large Language Models Help Multimodal Language Analysis? MMLA: A Comprehensive Benchmark},
  author={Zhang, Hanlei and others}, journal={arXiv preprint arXiv:2504.16427}, year={2025}
}"""

METRIC_NAMES = ("acc", "wf1", "wp", "f1", "r", "p")


def classification_metrics(
    predictions: Sequence[str],
    references: Sequence[str],
    labels: Sequence[str] | None = None,
    upstream_compatible: bool = False,
) -> dict[str, float]:
    """The six MMLA metrics (percent, two decimals)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not references:
        raise ValueError("no samples to score")
    y_true, y_pred = np.asarray(references, dtype=object), np.asarray(predictions, dtype=object)
    if upstream_compatible:
        use = None
    else:
        use = list(labels) if labels is not None else sorted(set(references))
        unknown = set(references) - set(use)
        if unknown:
            raise ValueError(f"references contain labels outside labels=: {sorted(unknown)}")
    out = {"acc": accuracy_score(y_true, y_pred)}
    for avg, names in (("weighted", ("wp", "r_w", "wf1")), ("macro", ("p", "r", "f1"))):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=use, average=avg, zero_division=0)
        out.update(zip(names, (p, r, f), strict=True))
    return {k: round(float(out[k]) * 100, 2) for k in METRIC_NAMES}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MmlaMetrics(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        import datasets

        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/thuiar/MMLA", "https://arxiv.org/abs/2504.16427"],
        )

    def _compute(self, predictions, references, labels=None, upstream_compatible=False):  # type: ignore[override]
        return classification_metrics(predictions, references, labels=labels, upstream_compatible=upstream_compatible)
