"""Reports of single runs: markdown tables, the paper comparison, and PNG plots.

Ranking several runs is the leaderboard's job (:mod:`mmla.hub_cards.leaderboard`): ``mmla report`` with
several runs asks it for the ranking (at the CLI layer) and passes the text in as ``ranking``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmla.eval.paper_results import paper_comparison, paper_model
from mmla.eval.results import METRICS, RunResults, load_results
from mmla.loaders.files import save_figure_atomic, write_text_atomic
from mmla.loaders.tasks import DIMENSIONS

__all__ = ["format_results", "load_results", "write_plots", "write_report"]


def _run(res: RunResults | Mapping[str, Any]) -> RunResults:
    return res if isinstance(res, RunResults) else RunResults.from_json(res)


def _fmt(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, int | float) else "-"


def format_results(res: RunResults | Mapping[str, Any]) -> str:
    """Markdown: one row per task (six metrics, 95% CI of ACC), then per dimension and overall, then the paper."""
    run = _run(res)
    head = (
        f"### {run.model} ({run.method}, {run.mode}, {run.split})\n\n"
        f"Protocol: prompt style {run.prompt_style}, {run.label_set} label lists, parsing {run.parse_mode}"
        f"{', upstream metrics (unknown/multi as classes)' if run.upstream_metrics else ''}. "
        f"Data: {run.data_source.describe()}."
        + (f" Shown: {', '.join(run.modalities)}." if run.modalities else "")
        + "\n\n"
    )
    lines = ["| task | dimension | n | ACC | 95% CI | WF1 | WP | F1 | R | P | unknown | multi |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key, t in run.tasks.items():
        ci = t.ci95.get("acc")
        ci_s = f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-"
        cells = [_fmt(t.metrics.get(k)) for k in METRICS]
        lines.append(f"| {key} | {t.dimension} | {t.n} | {cells[0]} | {ci_s} | {' | '.join(cells[1:])} "
                     f"| {t.num_unknown} | {t.num_multi} |")  # fmt: skip
    dims = ["", "| dimension | n | ACC |", "|---|---:|---:|"]
    dims += [f"| {d} | {v.n} | {_fmt(v.acc)} |" for d, v in run.dimensions.items()]
    dims.append(f"| **overall (pooled)** | {run.overall.n} | **{_fmt(run.overall.acc)}** |")
    out = head + "\n".join(lines + dims)
    if paper_model(run.base_model) or paper_model(run.model):
        out += "\n\n#### Comparison with the paper\n\n" + paper_comparison(run)
    return out


def write_report(
    runs: Sequence[RunResults | Mapping[str, Any]], out_dir: str | os.PathLike, *, ranking: str | None = None
) -> str:
    """``report.md``: the ``ranking`` text when given (the leaderboard of several runs), then each run's tables."""
    text = "\n\n".join(format_results(r) for r in runs)
    if ranking:
        text = ranking.rstrip() + "\n\n## Runs\n\n" + text
    write_text_atomic(Path(out_dir) / "report.md", text + "\n")
    return text


def write_plots(res: RunResults | Mapping[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Per-dimension ACC bars and a per-task ACC radar (as the paper's figures), PNG via Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    run = _run(res)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    dims = [d for d in DIMENSIONS if d in run.dimensions]
    overall = run.overall.acc
    if dims:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        vals = [run.dimensions[d].acc for d in dims]
        ax.bar([d.replace("_", "\n") for d in dims], vals, color="#4C72B0")
        ax.axhline(overall, color="k", ls="--", lw=1, label=f"overall {overall:.2f}")
        for i, v in enumerate(vals):
            ax.text(i, v + 0.5, f"{v:.1f}", ha="center", fontsize=8)
        ax.set_ylabel("ACC (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{run.model} ({run.mode}, {run.split})", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(save_figure_atomic(fig, out / "dimensions.png"))
        plt.close(fig)
    tasks = [k for k, t in run.tasks.items() if t.n]
    if len(tasks) >= 3:
        vals = [run.tasks[k].metrics["acc"] for k in tasks]
        angles = np.linspace(0, 2 * np.pi, len(tasks), endpoint=False).tolist()
        fig, ax = plt.subplots(figsize=(5, 5), subplot_kw={"polar": True})
        ax.plot(angles + angles[:1], vals + vals[:1], color="#C44E52")
        ax.fill(angles + angles[:1], vals + vals[:1], color="#C44E52", alpha=0.25)
        ax.set_xticks(angles)
        ax.set_xticklabels(tasks, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_title(f"ACC per task: {run.model}", fontsize=9)
        fig.tight_layout()
        written.append(save_figure_atomic(fig, out / "radar.png"))
        plt.close(fig)
    return written
