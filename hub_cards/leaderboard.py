"""Rank models by pooled ACC (overall and per dimension), like Figures 2-3 of the MMLA paper.

Zero-shot and fine-tuned (SFT/IT) runs are ranked in separate sections, as in the paper. Within a group,
runs are ranked together only when they share split, task set, prompt protocol and data source
(:attr:`RunResults.comparability`); runs that differ are refused, or with ``allow_mixed`` ranked in
sections of their own. The paper's rows were scored on the test split of all 12 tasks of the official
release with the upstream code's protocol: a run is ranked among them only when it was scored that way
(:func:`mmla.eval.paper_results.paper_problems` finds nothing). Every other run is listed under "not
comparable with the paper", with the reason, and the paper's rows are shown apart, for reference. A run
that fed the model audio (``--modalities ...,audio``) is never ranked with the paper, whose models saw text
and video only; its row carries its modalities (``[text+video+audio]``), so that one model with and without
audio can be ranked side by side on the same data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmla.eval.paper_results import PAPER_SOURCE, PAPER_SPLIT, modality_mark, paper_problems, paper_rows
from mmla.hub_cards.results import RunResults, check_compatible, fmt, load_results
from mmla.loaders.files import save_figure_atomic, write_text_atomic
from mmla.loaders.tasks import DIMENSIONS, MMLA_HUB_REPO, TASKS

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
    prompt: str = "upstream, labels upstream, parsing upstream"
    """Prompt protocol in words."""


@dataclass
class Section:
    """One table of a method group.

    ``kind``: ``paper`` (runs ranked among the paper's rows), ``runs`` (runs ranked among themselves: not
    comparable with the paper, or the paper left out) or ``reference`` (the paper's rows alone).
    """

    group: str
    kind: str
    rows: list[Row]
    """Best first."""
    setting: str = ""
    """What the runs of this section share: split, tasks, protocol, data."""
    protocol: str = ""
    """Their prompt protocol in words (the title of a section of runs when the paper is left out)."""
    reason: str | None = None
    """Why these runs are not ranked with the paper (``runs`` sections when the paper is shown)."""

    @property
    def title(self) -> str:
        label = GROUPS[self.group][0]
        if self.kind == "paper":
            return f"{label}: ranked with the paper"
        if self.kind == "reference":
            return f"{label}: the paper's rows (reference, not ranked with the runs above)"
        return f"{label}: not comparable with the paper" if self.reason else f"{label}: {self.protocol}"


@dataclass
class Leaderboard:
    sections: list[Section]
    notes: list[str]
    dimensions: list[str]
    with_paper: bool = True

    def sections_of(self, group: str, kind: str | None = None) -> list[Section]:
        return [s for s in self.sections if s.group == group and (kind is None or s.kind == kind)]


def _row(run: RunResults) -> Row:
    overall = run.overall
    mark = modality_mark(run)
    return Row(
        name=run.display_name + (f" [{mark}]" if mark else ""),
        method=run.method,
        overall_acc=overall.acc,
        n=overall.n,
        dimensions={d: a.acc for d, a in run.dimensions.items()},
        split=run.split,
        tasks=len(run.tasks),
        prompt=run.protocol_text.replace("`", "").replace("prompt ", "", 1),
    )


def _setting(run: RunResults) -> str:
    return f"{run.split} split, {len(run.tasks)} task(s), {run.protocol_text}; data: {run.data_source.describe()}"


def _by_key(runs: Sequence[RunResults]) -> list[list[RunResults]]:
    groups: dict[Any, list[RunResults]] = {}
    for run in runs:
        groups.setdefault(run.comparability, []).append(run)
    return list(groups.values())


def _ranked(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: -r.overall_acc)


def build_leaderboard(
    results: Sequence[RunResults | str | os.PathLike[str]], *, with_paper: bool = True, allow_mixed: bool = False
) -> Leaderboard:
    if not results:
        raise ValueError("no results given; pass one or more results.json files or run folders")
    runs = [r if isinstance(r, RunResults) else load_results(r) for r in results]
    notes = check_compatible(runs, allow_mixed=allow_mixed)
    if notes:
        notes.append(
            "Runs that differ in these are ranked in separate sections; runs of different sections are not compared."
        )
    sections: list[Section] = []
    for group, (_, methods) in GROUPS.items():
        members = [r for r in runs if r.method in methods]
        if not members:
            continue
        paper = [
            Row(p.model, p.method, p.overall_acc, None, source="paper",
                prompt=f"{PAPER_PROMPT[group]}, labels upstream, parsing upstream")
            for p in paper_rows(methods)
        ] if with_paper else []  # fmt: skip
        comparable = [r for r in members if with_paper and not paper_problems(r)]
        for same in _by_key(comparable):
            rows = _ranked(paper + [_row(r) for r in same])
            sections.append(Section(group, "paper", rows, _setting(same[0]), same[0].protocol_text))
        for same in _by_key([r for r in members if all(r is not c for c in comparable)]):
            reason = "; ".join(paper_problems(same)) if with_paper else None
            rows = _ranked([_row(r) for r in same])
            sections.append(Section(group, "runs", rows, _setting(same[0]), same[0].protocol_text, reason))
        if with_paper and not comparable:
            sections.append(Section(group, "reference", paper))
    dims = [d for d in DIMENSIONS if any(d in row.dimensions for s in sections for row in s.rows)]
    return Leaderboard(sections=sections, notes=notes, dimensions=dims, with_paper=with_paper)


def _table(rows: Sequence[Row], dims: Sequence[str]) -> list[str]:
    head = ["rank", "model", "method", "source", "prompt", "split", "tasks", "n", "overall ACC",
            *(d.replace("_", " ") for d in dims)]  # fmt: skip
    align = ["---:", "---", "---", "---", "---", "---", "---:", "---:", "---:", *("---:" for _ in dims)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for i, r in enumerate(rows, 1):
        method = r.method if r.method == "zero-shot" else r.method.upper()
        name = f"**{r.name}**" if r.source == "this run" else r.name
        n = str(r.n) if r.n is not None else "—"
        cells = [str(i), name, method, r.source, r.prompt, r.split, str(r.tasks), n, fmt(r.overall_acc)]
        cells += [fmt(r.dimensions.get(d)) for d in dims]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def leaderboard_markdown(board: Leaderboard) -> str:
    intro = (
        "Models ranked by ACC pooled over all samples of their tasks (percent), overall and per dimension; one "
        "section per method group, and runs are ranked together only when they share split, tasks, prompt "
        "protocol and data."
    )
    if board.with_paper:
        intro += (
            f" Rows marked *paper* are the numbers reported by {PAPER_SOURCE} on the {PAPER_SPLIT} split of all "
            f"{len(TASKS)} tasks of the official release ({MMLA_HUB_REPO}) with the upstream code's prompts and "
            "parsing (overall only); a run is ranked among them only when it was scored the same way, on a "
            "verified fetch of that release (`mmla data fetch`). Any other run is listed as not comparable with "
            "the paper, with the reason."
        )
    out = ["# MMLA leaderboard", "", intro]
    for section in board.sections:
        out += ["", f"## {section.title}", ""]
        if section.kind != "reference":
            out += [f"Runs: {section.setting}.", ""]
        if section.reason:
            out += [f"Why not ranked with the paper: these runs used {section.reason}.", ""]
        out += _table(section.rows, board.dimensions if section.kind != "reference" else [])
    if board.notes:
        out += ["", "---", "", *board.notes]
    return "\n".join(out) + "\n"


def leaderboard_chart(board: Leaderboard, path: str | os.PathLike[str]) -> Path:
    """Horizontal bars of overall ACC per ranked section (paper rows grey), like the paper's Figures 2-3."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    sections = [s for s in board.sections if s.kind != "reference" and s.rows]
    height = max(2.5, 0.32 * max(len(s.rows) for s in sections) + 1.2)
    fig, axes = plt.subplots(1, len(sections), figsize=(6.5 * len(sections), height), squeeze=False)
    for ax, section in zip(axes[0], sections, strict=True):
        ordered = section.rows[::-1]
        colors = ["#b0b0b0" if r.source == "paper" else "#ff9d00" for r in ordered]
        labels = [r.name + (" (paper)" if r.source == "paper" else "") for r in ordered]
        bars = ax.barh(range(len(ordered)), [r.overall_acc for r in ordered], color=colors)
        ax.set_yticks(range(len(ordered)), labels, fontsize=8)
        for bar, r in zip(bars, ordered, strict=True):
            ax.text(bar.get_width() + 0.5, bar.get_y() + bar.get_height() / 2, f"{r.overall_acc:.2f}",
                    va="center", fontsize=7)  # fmt: skip
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"pooled ACC (%), {ordered[0].split} split")
        ax.set_title(section.title.replace("`", ""), fontsize=9)
    fig.tight_layout()
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
