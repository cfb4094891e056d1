"""Reports from ``results.json``: markdown tables, the paper comparison, and PNG plots."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmla.eval.metrics import METRIC_NAMES
from mmla.eval.paper_results import OVERALL, PER_TASK, paper_model
from mmla.loaders.files import read_json, save_figure_atomic, write_text_atomic
from mmla.loaders.tasks import DIMENSIONS

__all__ = ["format_results", "load_results", "paper_comparison", "write_plots", "write_report"]


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found; point at an `mmla eval --output` folder")
    res = read_json(p)
    for key in ("model", "tasks", "overall"):
        if key not in res:
            raise ValueError(f"{p}: missing field {key!r}; is it an mmla results.json?")
    return res


def _fmt(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, int | float) else "-"


def format_results(res: dict[str, Any]) -> str:
    """Markdown: one row per task (six metrics, 95% CI of ACC), then per dimension and overall."""
    head = f"### {res['model']} ({res.get('method', 'zero-shot')}, {res.get('mode')}, {res.get('split')})\n\n"
    lines = ["| task | dimension | n | ACC | 95% CI | WF1 | WP | F1 | R | P | unknown | multi |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key, t in res["tasks"].items():
        m = t.get("metrics", {})
        ci = t.get("ci95", {}).get("acc")
        ci_s = f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-"
        cells = [_fmt(m.get(k)) for k in METRIC_NAMES]
        lines.append(f"| {key} | {t['dimension']} | {t['n']} | {cells[0]} | {ci_s} | {' | '.join(cells[1:])} "
                     f"| {t.get('num_unknown', 0)} | {t.get('num_multi', 0)} |")  # fmt: skip
    dims = ["", "| dimension | n | ACC |", "|---|---:|---:|"]
    for d, v in res.get("dimensions", {}).items():
        dims.append(f"| {d} | {v['n']} | {_fmt(v['acc'])} |")
    dims.append(f"| **overall (pooled)** | {res['overall']['n']} | **{_fmt(res['overall']['acc'])}** |")
    out = head + "\n".join(lines + dims)
    cmp = paper_comparison(res)
    if cmp:
        out += "\n\n" + cmp
    return out


def paper_comparison(res: dict[str, Any]) -> str:
    """A table against the paper's numbers when the model (or base model) is one of the paper's."""
    name = paper_model(res.get("base_model") or res.get("model"))
    method = res.get("method", "zero-shot")
    if name is None:
        return ""
    rows = ["| | this run | paper (test) |", "|---|---:|---:|"]
    for task, ref in PER_TASK.get(method, {}).get(name, {}).items():
        if task in res["tasks"]:
            rows.append(f"| {task} ACC | {_fmt(res['tasks'][task]['metrics'].get('acc'))} | {ref:.2f} |")
    ref_all = OVERALL.get(method, {}).get(name)
    if ref_all is not None:
        rows.append(f"| overall ACC ({len(res['tasks'])} tasks) | {_fmt(res['overall']['acc'])} | {ref_all:.2f} |")
    if len(rows) == 2:
        return ""
    note = "" if res.get("split") == "test" else f" (this run: {res.get('split')} split, not comparable one to one)"
    return f"Paper comparison: {name}, {method}{note}\n\n" + "\n".join(rows)


def write_report(runs: Sequence[dict[str, Any]], out_dir: str | os.PathLike) -> str:
    """``report.md``: each run's tables, then a leaderboard of the runs by overall ACC."""
    text = "\n\n".join(format_results(r) for r in runs)
    if len(runs) > 1:
        board = ["| rank | model | method | mode | overall ACC | n |", "|---:|---|---|---|---:|---:|"]
        for i, r in enumerate(sorted(runs, key=lambda r: -r["overall"]["acc"]), 1):
            board.append(f"| {i} | {r['model']} | {r.get('method')} | {r.get('mode')} | "
                         f"{_fmt(r['overall']['acc'])} | {r['overall']['n']} |")  # fmt: skip
        text = "## Leaderboard\n\n" + "\n".join(board) + "\n\n" + text
    write_text_atomic(Path(out_dir) / "report.md", text + "\n")
    return text


def write_plots(res: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Per-dimension ACC bars and a per-task ACC radar (as the paper's figures), PNG via Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    dims = [d for d in DIMENSIONS if d in res.get("dimensions", {})]
    if dims:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        vals = [res["dimensions"][d]["acc"] for d in dims]
        ax.bar([d.replace("_", "\n") for d in dims], vals, color="#4C72B0")
        ax.axhline(res["overall"]["acc"], color="k", ls="--", lw=1, label=f"overall {res['overall']['acc']:.2f}")
        for i, v in enumerate(vals):
            ax.text(i, v + 0.5, f"{v:.1f}", ha="center", fontsize=8)
        ax.set_ylabel("ACC (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{res['model']} ({res.get('mode')}, {res.get('split')})", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(save_figure_atomic(fig, out / "dimensions.png"))
        plt.close(fig)
    tasks = [k for k, t in res["tasks"].items() if t.get("metrics")]
    if len(tasks) >= 3:
        vals = [res["tasks"][k]["metrics"]["acc"] for k in tasks]
        angles = np.linspace(0, 2 * np.pi, len(tasks), endpoint=False).tolist()
        fig, ax = plt.subplots(figsize=(5, 5), subplot_kw={"polar": True})
        ax.plot(angles + angles[:1], vals + vals[:1], color="#C44E52")
        ax.fill(angles + angles[:1], vals + vals[:1], color="#C44E52", alpha=0.25)
        ax.set_xticks(angles)
        ax.set_xticklabels(tasks, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_title(f"ACC per task: {res['model']}", fontsize=9)
        fig.tight_layout()
        written.append(save_figure_atomic(fig, out / "radar.png"))
        plt.close(fig)
    return written
