"""Rank models by pooled ACC (overall and per dimension), like Figures 2-3 of the MMLA paper.

Zero-shot and fine-tuned (SFT/IT) runs are ranked in separate sections, as in the paper, and so are
runs of different prompt protocols (prompt style, label set, parsing: mixing them needs
``allow_mixed``). Every row says its protocol. The paper's own rows (upstream prompt, test split, all
12 tasks) are ranked among a section's runs only when those runs share that setting; otherwise they are
listed apart, for reference only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmla.hub_cards.paper_rows import PAPER_SOURCE, PAPER_SPLIT, paper_rows
from mmla.hub_cards.results import (
    PAPER_PROTOCOL,
    PAPER_STYLES,
    RunResults,
    check_compatible,
    fmt,
    load_results,
    protocol_text,
)
from mmla.loaders.files import save_figure_atomic, write_text_atomic
from mmla.loaders.tasks import DIMENSIONS, TASKS

GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "zero-shot": ("Zero-shot inference", ("zero-shot",)),
    "fine-tuned": ("Supervised fine-tuning (SFT) and instruction tuning (IT)", ("sft", "it")),
}
PAPER_PROMPT = {"zero-shot": "upstream", "fine-tuned": "upstream_sft"}
"""The prompt the paper's rows were scored with, per group (the upstream code's zero-shot/fine-tuning files)."""


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
    prompt: str = "upstream"
    """Prompt protocol in words (style, and label set / parsing when recorded)."""


@dataclass
class Section:
    """One ranked table: one method group under one prompt protocol."""

    group: str
    protocol: tuple[str, str | None, str | None]
    rows: list[Row]
    """Ranked by overall ACC, best first (paper rows included when comparable)."""
    separate_paper: list[Row] = field(default_factory=list)
    """Paper rows listed apart when this section's runs are not comparable with the paper's setting."""

    @property
    def title(self) -> str:
        return f"{GROUPS[self.group][0]}: {protocol_text(self.protocol)}"


@dataclass
class Leaderboard:
    sections: list[Section]
    notes: list[str]
    dimensions: list[str]
    split: str

    def section(self, group: str) -> Section:
        """The only section of a method group (tests and single-protocol callers)."""
        (found,) = [s for s in self.sections if s.group == group]
        return found


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
        prompt=run.protocol_text.replace("`", "").replace("prompt ", "", 1),
    )


def _paper_setting(group: str, runs: Sequence[RunResults]) -> str | None:
    """Why these runs cannot be ranked among the paper's rows (None: they can)."""
    if any(r.split != PAPER_SPLIT or r.task_set != set(TASKS) for r in runs):
        return f"these runs are not on the {PAPER_SPLIT} split of all {len(TASKS)} tasks"
    if any(r.synthetic_data for r in runs):
        return "these runs were scored on synthetic sample data (`mmla data sample`), not the MMLA release"
    styles = {r.prompt_style for r in runs}
    allowed = set().union(*(PAPER_STYLES[m] for m in GROUPS[group][1]))
    if not styles <= allowed:
        return f"these runs use the {', '.join(sorted(styles))} prompt style, not the upstream one"
    return None


def build_leaderboard(
    results: Sequence[RunResults | str | os.PathLike[str]], *, with_paper: bool = True, allow_mixed: bool = False
) -> Leaderboard:
    if not results:
        raise ValueError("no results given; pass one or more results.json files or run folders")
    runs = [r if isinstance(r, RunResults) else load_results(r) for r in results]
    notes = [f"† {n}" for n in check_compatible(runs, allow_mixed=allow_mixed, mixed_protocols="sections")]
    ref = runs[0]
    marks = ["†" if notes and (r.split != ref.split or r.task_set != ref.task_set) else "" for r in runs]
    sections: list[Section] = []
    for key, (_, methods) in GROUPS.items():
        members = [(r, m) for r, m in zip(runs, marks, strict=True) if r.method in methods]
        for protocol in dict.fromkeys(r.protocol for r, _ in members):
            group_runs = [r for r, _ in members if r.protocol == protocol]
            rows = [_row(r, m) for r, m in members if r.protocol == protocol]
            section = Section(key, protocol, rows)
            if with_paper:
                paper = [
                    Row(p.model, p.method, p.overall_acc, None, source="paper",
                        prompt=f"{PAPER_PROMPT[key]}, labels upstream, parsing upstream")
                    for p in paper_rows(methods)
                ]  # fmt: skip
                why_not = _paper_setting(key, group_runs)
                if why_not is None:
                    section.rows += paper
                    off = sorted(
                        {
                            f"{k.replace('_', ' ')} `{getattr(r, k)}`"
                            for r in group_runs
                            for k, v in PAPER_PROTOCOL.items()
                            if getattr(r, k) not in (None, v)
                        }
                    )
                    if off:
                        notes.append(
                            f"{GROUPS[key][0]}: these runs use {', '.join(off)}; the paper's code used upstream label "
                            "lists and parsing, which can move ACC by about a point."
                        )
                else:
                    section.separate_paper = paper
                    notes.append(
                        f"{GROUPS[key][0]} ({protocol_text(protocol)}): paper rows ({PAPER_SOURCE}) were scored with "
                        f"the upstream prompt on the {PAPER_SPLIT} split of all {len(TASKS)} tasks; {why_not}, so the "
                        "paper is listed apart, for reference only."
                    )
            section.rows.sort(key=lambda r: -r.overall_acc)
            sections.append(section)
    if with_paper and any(r.source == "paper" for s in sections for r in s.rows):
        data = sorted({str(r.data.get("data")) for r in runs if r.data.get("data")})
        notes.append(
            f"Paper rows are the numbers reported by {PAPER_SOURCE} on the official MMLA test sets; this run's rows "
            f"were scored on {', '.join(data) or 'the data recorded in results.json'}: compare only if that is the "
            "official release."
        )
    dims = [d for d in DIMENSIONS if any(d in row.dimensions for s in sections for row in s.rows)]
    return Leaderboard(sections=sections, notes=notes, dimensions=dims, split=ref.split)


def _table(rows: Sequence[Row], dims: Sequence[str]) -> list[str]:
    head = [
        "rank",
        "model",
        "method",
        "source",
        "prompt",
        "split",
        "tasks",
        "n",
        "overall ACC",
        *(d.replace("_", " ") for d in dims),
    ]
    align = ["---:", "---", "---", "---", "---", "---", "---:", "---:", "---:", *("---:" for _ in dims)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for i, r in enumerate(rows, 1):
        method = r.method if r.method == "zero-shot" else r.method.upper()
        name = f"**{r.name}**{r.mark}" if r.source == "this run" else f"{r.name}{r.mark}"
        n = str(r.n) if r.n is not None else "—"
        cells = [str(i), name, method, r.source, r.prompt, r.split, str(r.tasks), n, fmt(r.overall_acc)]
        cells += [fmt(r.dimensions.get(d)) for d in dims]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def leaderboard_markdown(board: Leaderboard) -> str:
    out = [
        "# MMLA leaderboard",
        "",
        f"Models ranked by ACC pooled over all {board.split} samples of their tasks (percent), overall and per "
        "dimension, one section per method group and prompt protocol (scores under different prompts are never "
        "ranked together). Rows marked *paper* are the paper's reported results (overall only).",
    ]
    for section in board.sections:
        out += ["", f"## {section.title}", "", *_table(section.rows, board.dimensions)]
        if section.separate_paper:
            out += ["", f"Paper reference (upstream prompt, {PAPER_SPLIT} split, all {len(TASKS)} tasks; not ranked "
                    "with the rows above):", ""]  # fmt: skip
            out += _table(section.separate_paper, [])
    if board.notes:
        out += ["", "---", "", *board.notes]
    return "\n".join(out) + "\n"


def leaderboard_chart(board: Leaderboard, path: str | os.PathLike[str]) -> Path:
    """Horizontal bars of overall ACC per section (paper rows grey), like the paper's Figures 2-3."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    sections = [s for s in board.sections if s.rows]
    height = max(2.5, 0.32 * max(len(s.rows) for s in sections) + 1.2)
    fig, axes = plt.subplots(1, len(sections), figsize=(6.5 * len(sections), height), squeeze=False)
    for ax, section in zip(axes[0], sections, strict=True):
        ordered = section.rows[::-1]
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
        ax.set_title(f"{GROUPS[section.group][0]}\n{protocol_text(section.protocol).replace('`', '')}", fontsize=9)
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
