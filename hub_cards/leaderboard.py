"""Rank models by pooled ACC (overall and per dimension), like Figures 2-3 of the MMLA paper.

Zero-shot and fine-tuned (SFT/IT) runs are ranked in separate tables, as in the paper. The paper's
own rows are interleaved (marked "paper") only when the runs were scored on the paper's split and
task set; otherwise they are listed apart, since pooled ACC over other tasks is not comparable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmla.hub_cards.paper_rows import PAPER_SOURCE, PAPER_SPLIT, paper_rows
from mmla.hub_cards.results import RunResults, check_compatible, fmt, load_results
from mmla.loaders.files import save_figure_atomic, write_text_atomic
from mmla.loaders.tasks import DIMENSIONS, TASKS

GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "zero-shot": ("Zero-shot inference", ("zero-shot",)),
    "fine-tuned": ("Supervised fine-tuning (SFT) and instruction tuning (IT)", ("sft", "it")),
}


@dataclass
class Row:
    name: str
    method: str
    overall_acc: float
    n: int | None
    dimensions: dict[str, float] = field(default_factory=dict)
    source: str = "this run"  # "this run" | "paper"
    split: str = PAPER_SPLIT
    tasks: int = len(TASKS)
    mark: str = ""


@dataclass
class Leaderboard:
    groups: dict[str, list[Row]]
    """group key -> rows ranked by overall ACC (best first)."""
    separate_paper: dict[str, list[Row]]
    """Paper rows listed apart when the runs are not comparable with the paper's setting."""
    notes: list[str]
    dimensions: list[str]
    split: str


def _row(run: RunResults, mark: str) -> Row:
    return Row(
        name=run.display_name,
        method=run.method,
        overall_acc=float(run.overall["acc"]),
        n=int(run.overall.get("n") or sum(int(e["n"]) for e in run.tasks.values())),
        dimensions={d: float(v["acc"]) for d, v in run.dimensions.items()},
        split=run.split,
        tasks=len(run.tasks),
        mark=mark,
    )


def build_leaderboard(
    results: Sequence[RunResults | str | os.PathLike[str]], *, with_paper: bool = True, allow_mixed: bool = False
) -> Leaderboard:
    if not results:
        raise ValueError("no results given; pass one or more results.json files or run folders")
    runs = [r if isinstance(r, RunResults) else load_results(r) for r in results]
    notes = [f"† {n}" for n in check_compatible(runs, allow_mixed=allow_mixed)]
    ref = runs[0]
    marks = ["†" if notes and (r.split != ref.split or r.task_set != ref.task_set) else "" for r in runs]
    comparable = all(r.split == PAPER_SPLIT and r.task_set == set(TASKS) for r in runs)
    groups: dict[str, list[Row]] = {}
    separate: dict[str, list[Row]] = {}
    for key, (_, methods) in GROUPS.items():
        rows = [_row(r, m) for r, m in zip(runs, marks, strict=True) if r.method in methods]
        paper = (
            [Row(p.model, p.method, p.overall_acc, None, source="paper") for p in paper_rows(methods)]
            if with_paper
            else []
        )
        if not rows and not (with_paper and comparable):
            continue
        if comparable:
            rows += paper
        elif rows and paper:
            separate[key] = paper
        groups[key] = sorted(rows, key=lambda r: -r.overall_acc)
    if with_paper and comparable:
        data = sorted({str(r.data.get("data")) for r in runs if r.data.get("data")})
        notes.append(
            f"Paper rows are the numbers reported by {PAPER_SOURCE} on the official MMLA test sets; this run's rows "
            f"were scored on {', '.join(data) or 'the data recorded in results.json'}: compare only if that is the "
            "official release."
        )
    if with_paper and not comparable:
        notes.append(
            f"Paper rows ({PAPER_SOURCE}) are on the {PAPER_SPLIT} split of all {len(TASKS)} tasks; these runs are "
            f"not ({ref.split} split, {len(ref.tasks)} task(s)), so the paper is listed apart, for reference only."
        )
    dims = [d for d in DIMENSIONS if any(d in row.dimensions for rows in groups.values() for row in rows)]
    return Leaderboard(groups=groups, separate_paper=separate, notes=notes, dimensions=dims, split=ref.split)


def _table(rows: Sequence[Row], dims: Sequence[str]) -> list[str]:
    head = [
        "rank",
        "model",
        "method",
        "source",
        "split",
        "tasks",
        "n",
        "overall ACC",
        *(d.replace("_", " ") for d in dims),
    ]
    align = ["---:", "---", "---", "---", "---", "---:", "---:", "---:", *("---:" for _ in dims)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for i, r in enumerate(rows, 1):
        method = r.method if r.method == "zero-shot" else r.method.upper()
        name = f"**{r.name}**{r.mark}" if r.source == "this run" else f"{r.name}{r.mark}"
        n = str(r.n) if r.n is not None else "—"
        cells = [str(i), name, method, r.source, r.split, str(r.tasks), n, fmt(r.overall_acc)]
        cells += [fmt(r.dimensions.get(d)) for d in dims]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def leaderboard_markdown(board: Leaderboard) -> str:
    out = [
        "# MMLA leaderboard",
        "",
        f"Models ranked by ACC pooled over all {board.split} samples of their tasks (percent), overall and per "
        "dimension. Rows marked *paper* are the paper's reported results (overall only).",
    ]
    for key, rows in board.groups.items():
        out += ["", f"## {GROUPS[key][0]}", "", *_table(rows, board.dimensions)]
        if key in board.separate_paper:
            out += ["", f"Paper reference ({PAPER_SPLIT} split, all {len(TASKS)} tasks):", ""]
            out += _table(board.separate_paper[key], [])
    if board.notes:
        out += ["", "---", "", *board.notes]
    return "\n".join(out) + "\n"


def leaderboard_chart(board: Leaderboard, path: str | os.PathLike[str]) -> Path:
    """Horizontal bars of overall ACC per group (paper rows grey), like the paper's Figures 2-3."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    groups = [(k, rows) for k, rows in board.groups.items() if rows]
    height = max(2.5, 0.32 * max(len(rows) for _, rows in groups) + 1.2)
    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), height), squeeze=False)
    for ax, (key, rows) in zip(axes[0], groups, strict=True):
        ordered = rows[::-1]
        colors = ["#b0b0b0" if r.source == "paper" else "#ff9d00" for r in ordered]
        labels = [f"{r.name}{r.mark}" + (" (paper)" if r.source == "paper" else "") for r in ordered]
        bars = ax.barh(range(len(ordered)), [r.overall_acc for r in ordered], color=colors)
        ax.set_yticks(range(len(ordered)), labels, fontsize=8)
        for bar, r in zip(bars, ordered, strict=True):
            ax.text(
                bar.get_width() + 0.5,
                bar.get_y() + bar.get_height() / 2,
                f"{r.overall_acc:.2f}",
                va="center",
                fontsize=7,
            )
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"pooled ACC (%), {board.split} split")
        ax.set_title(GROUPS[key][0], fontsize=10)
    if board.notes:
        fig.text(0.01, 0.005, board.notes[0][:220], fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    target = save_figure_atomic(fig, path)
    plt.close(fig)
    return target


def write_leaderboard(
    results: Sequence[RunResults | str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    with_paper: bool = True,
    allow_mixed: bool = False,
    name: str = "leaderboard",
) -> dict[str, Path]:
    """Write ``<name>.md`` and ``<name>.png`` into ``out_dir``; returns their paths."""
    board = build_leaderboard(results, with_paper=with_paper, allow_mixed=allow_mixed)
    out = Path(out_dir)
    md = write_text_atomic(out / f"{name}.md", leaderboard_markdown(board))
    png = leaderboard_chart(board, out / f"{name}.png")
    return {"leaderboard_md": md, "leaderboard_png": png}
