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

__all__ = [
    "comparability",
    "format_results",
    "load_results",
    "paper_comparison",
    "protocol",
    "write_plots",
    "write_report",
]


def protocol(res: dict[str, Any]) -> dict[str, str]:
    """How a run's prompt was built and its answers parsed; results written before these were recorded
    used the Appendix D prompt (``mmla``, now ``paper``), the full label lists and alias parsing."""
    style = res.get("prompt_style") or "paper"
    return {
        "prompt_style": "paper" if style == "mmla" else style,
        "label_set": res.get("label_set") or "full",
        "parse_mode": res.get("parse_mode") or "aliases",
    }


def comparability(res: dict[str, Any]) -> tuple[str, ...]:
    """Runs rank against each other only when this key is equal: same split, prompt, label lists and parsing.

    Rank-mode runs carry the parse mode they were given (it does not touch their scores), so they sit with the
    generate runs of that mode, by default ``aliases``.
    """
    p = protocol(res)
    return (str(res.get("split")), p["prompt_style"], p["label_set"], p["parse_mode"])


def _describe(key: tuple[str, ...]) -> str:
    split, style, labels, parse = key
    return f"{split} split, prompt style {style}, {labels} label lists, parsing {parse}"


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
    p = protocol(res)
    head = (
        f"### {res['model']} ({res.get('method', 'zero-shot')}, {res.get('mode')}, {res.get('split')})\n\n"
        f"Prompt style {p['prompt_style']}, {p['label_set']} label lists, parsing {p['parse_mode']}"
        f"{', upstream metrics (unknown/multi as classes)' if res.get('upstream_metrics') else ''}.\n\n"
    )
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
    notes = []
    if res.get("split") != "test":
        notes.append(f"{res.get('split')} split")
    p = protocol(res)
    if p["prompt_style"] != "upstream":
        notes.append(f"prompt style {p['prompt_style']}, while the paper's numbers used the upstream prompt")
    note = f" (this run: {'; '.join(notes)}; not comparable one to one)" if notes else ""
    return f"Paper comparison: {name}, {method}{note}\n\n" + "\n".join(rows)


def write_report(runs: Sequence[dict[str, Any]], out_dir: str | os.PathLike) -> str:
    """``report.md``: a leaderboard of the runs by overall ACC, then each run's tables.

    Runs are ranked only against runs of the same split, prompt style, label lists and parsing: with
    several such groups there is one leaderboard per group, and the report says why.
    """
    text = "\n\n".join(format_results(r) for r in runs)
    if len(runs) > 1:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in runs:
            groups.setdefault(comparability(r), []).append(r)
        parts = []
        if len(groups) > 1:
            parts.append(
                "The runs differ in split, prompt style, label lists or answer parsing, which change the scores: "
                "each group below is ranked on its own, and runs of different groups are not compared."
            )
        for key, members in groups.items():
            title = f"## Leaderboard ({_describe(key)})"
            board = [title, "", "| rank | model | method | mode | overall ACC | n |", "|---:|---|---|---|---:|---:|"]
            for i, r in enumerate(sorted(members, key=lambda r: -r["overall"]["acc"]), 1):
                board.append(f"| {i} | {r['model']} | {r.get('method')} | {r.get('mode')} | "
                             f"{_fmt(r['overall']['acc'])} | {r['overall']['n']} |")  # fmt: skip
            parts.append("\n".join(board))
        text = "\n\n".join(parts) + "\n\n" + text
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
