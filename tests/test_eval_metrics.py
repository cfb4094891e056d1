"""Metrics: equal to scikit-learn, upstream-compatible variant, pooled ACC, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from mmla.eval.metrics import (
    METRIC_PATH,
    bootstrap_ci,
    bootstrap_distribution,
    compute_metrics,
    load_metric,
    pooled_accuracy,
)
from mmla.loaders.tasks import get_task


def _random(task_key: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    task = get_task(task_key)
    rng = np.random.default_rng(seed)
    refs = list(rng.choice(task.labels, n))
    preds = list(rng.choice([*task.labels, "unknown", "multi"], n))
    return preds, refs


@pytest.mark.parametrize(("task_key", "seed"), [("mintrec", 0), ("meld", 1), ("mosi", 2), ("annomi_therapist", 3)])
def test_metrics_equal_sklearn_with_task_labels(task_key: str, seed: int) -> None:
    preds, refs = _random(task_key, 200, seed)
    labels = list(get_task(task_key).labels)
    got = compute_metrics(task_key, preds, refs)
    kw = {"labels": labels, "zero_division": 0}
    want = {
        "acc": accuracy_score(refs, preds),
        "wf1": f1_score(refs, preds, average="weighted", **kw),
        "wp": precision_score(refs, preds, average="weighted", **kw),
        "f1": f1_score(refs, preds, average="macro", **kw),
        "r": recall_score(refs, preds, average="macro", **kw),
        "p": precision_score(refs, preds, average="macro", **kw),
    }
    assert got == {k: round(v * 100, 2) for k, v in want.items()}


def test_upstream_compatible_counts_pseudo_labels_as_classes() -> None:
    # The SPEC example: one unparseable answer in a 100-item binary task.
    refs = ["positive"] * 50 + ["negative"] * 50
    preds = list(refs)
    preds[0] = "unknown"
    ours = compute_metrics("mosi", preds, refs)
    upstream = compute_metrics("mosi", preds, refs, upstream_compatible=True)
    assert ours["acc"] == upstream["acc"] == 99.0
    assert ours["f1"] > 99
    assert upstream["f1"] == pytest.approx(round(100 * f1_score(refs, preds, average="macro"), 2))
    assert upstream["f1"] < 67


def test_evaluate_module_loads_offline_and_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    preds, refs = _random("meld", 80, 5)
    metric = load_metric()
    metric.add_batch(predictions=preds[:40], references=refs[:40])
    metric.add_batch(predictions=preds[40:], references=refs[40:])
    got = metric.compute(labels=list(get_task("meld").labels))
    assert got == compute_metrics("meld", preds, refs)
    assert METRIC_PATH.endswith("mmla_metrics")


def test_metric_errors() -> None:
    with pytest.raises(ValueError, match="predictions"):
        compute_metrics("mosi", ["positive"], ["positive", "negative"])
    with pytest.raises(ValueError, match="outside labels"):
        compute_metrics("mosi", ["positive"], ["joy"])


def test_pooled_accuracy_is_not_the_mean_of_task_accuracies() -> None:
    big = (["a"] * 90 + ["b"] * 10, ["a"] * 100)  # 90 %
    small = (["x"], ["y"])  # 0 %
    res = pooled_accuracy([big, small])
    assert res == {"acc": round(100 * 90 / 101, 2), "n": 101}


def test_bootstrap_matches_sklearn_per_resample_and_is_seeded() -> None:
    preds, refs = _random("meld_da", 60, 7)
    labels = list(get_task("meld_da").labels)
    draws, dist = bootstrap_distribution(preds, refs, labels, n_resamples=20, seed=3)
    for b in range(5):
        r = [refs[i] for i in draws[b]]
        p = [preds[i] for i in draws[b]]
        assert dist["acc"][b] == pytest.approx(accuracy_score(r, p))
        assert dist["f1"][b] == pytest.approx(f1_score(r, p, labels=labels, average="macro", zero_division=0))
        assert dist["wf1"][b] == pytest.approx(f1_score(r, p, labels=labels, average="weighted", zero_division=0))
    ci = bootstrap_ci(preds, refs, labels, n_resamples=500, seed=1)
    assert ci == bootstrap_ci(preds, refs, labels, n_resamples=500, seed=1)
    acc = compute_metrics("meld_da", preds, refs)["acc"]
    assert ci["acc"][0] <= acc <= ci["acc"][1]
    assert ci["acc"][1] - ci["acc"][0] > 5  # 60 samples: a wide interval
