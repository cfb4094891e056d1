"""The MMLA paper's numbers (Zhang et al., 2025; test split, ACC in percent) and the one comparison with them.

The paper scored every model on the test split of all 12 tasks of the official release, with the upstream
code's prompts, label lists and answer parsing, and showed the models text and video only (upstream feeds no
audio). :func:`paper_problems` says why a run is not comparable with that (synthetic or user data, another
split, a subset of tasks, another protocol, audio fed); reports and model cards
render :func:`paper_comparison`, and the leaderboard ranks a run among :func:`paper_rows` only when it has
no problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mmla.eval.results import RunResults, pooled_over
from mmla.loaders.tasks import MMLA_HUB_REPO, TASKS

PAPER_SPLIT = "test"
PAPER_SOURCE = "Zhang et al., 2025 (MMLA, arXiv 2504.16427)"
PAPER_URL = "https://arxiv.org/abs/2504.16427"
PAPER_STYLES: dict[str, frozenset[str]] = {
    "zero-shot": frozenset({"upstream"}),
    "sft": frozenset({"upstream", "upstream_sft"}),
    "it": frozenset({"upstream", "upstream_sft"}),
}
"""Prompt styles the paper's numbers were produced with (upstream code), per method."""
PAPER_PROTOCOL = {"label_set": "upstream", "parse_mode": "upstream"}
"""The paper's label lists and answer parsing (upstream ``infer.py``/``eval.py``)."""

# Paper model name -> Hub ids (lower-case, without org) that are that model.
PAPER_MODELS: dict[str, tuple[str, ...]] = {
    "GPT-4o": ("gpt-4o",),
    "Qwen2-0.5B": ("qwen2-0.5b-instruct",),
    "Qwen2-1.5B": ("qwen2-1.5b-instruct",),
    "Qwen2-7B": ("qwen2-7b-instruct",),
    "Llama3-8B": ("meta-llama-3-8b-instruct", "llama-3-8b-instruct"),
    "InternLM2.5-7B": ("internlm2_5-7b-chat",),
    "Qwen2-VL-7B": ("qwen2-vl-7b-instruct",),
    "Qwen2-VL-72B": ("qwen2-vl-72b-instruct",),
    "LLaVA-Video-7B": ("llava-video-7b-qwen2", "llava-video-7b-qwen2-hf"),
    "LLaVA-Video-72B": ("llava-video-72b-qwen2", "llava-video-72b-qwen2-hf"),
    "LLaVA-OV-7B": ("llava-onevision-qwen2-7b-ov", "llava-onevision-qwen2-7b-ov-hf"),
    "LLaVA-OV-72B": ("llava-onevision-qwen2-72b-ov", "llava-onevision-qwen2-72b-ov-hf"),
    "MiniCPM-V-2.6-8B": ("minicpm-v-2_6",),
    "VideoLLaMA2-7B": ("videollama2-7b",),
}

# Overall ACC (all test samples of all tasks pooled), by method.
OVERALL: dict[str, dict[str, float]] = {
    "zero-shot": {
        "GPT-4o": 52.60, "Qwen2-VL-72B": 52.55, "LLaVA-OV-72B": 52.44, "LLaVA-Video-72B": 51.64,
        "InternLM2.5-7B": 50.28, "Qwen2-7B": 48.45, "Qwen2-VL-7B": 47.12, "Llama3-8B": 44.06,
        "LLaVA-Video-7B": 43.32, "VideoLLaMA2-7B": 42.82, "LLaVA-OV-7B": 40.65, "Qwen2-1.5B": 40.61,
        "MiniCPM-V-2.6-8B": 37.03, "Qwen2-0.5B": 22.14,
    },
    "sft": {
        "Qwen2-VL-72B": 69.18, "MiniCPM-V-2.6-8B": 68.88, "LLaVA-OV-72B": 68.67, "LLaVA-Video-72B": 68.44,
        "VideoLLaMA2-7B": 68.30, "Qwen2-VL-7B": 67.60, "LLaVA-OV-7B": 67.54, "LLaVA-Video-7B": 67.47,
        "Llama3-8B": 66.18, "Qwen2-7B": 66.15, "InternLM2.5-7B": 65.72, "Qwen2-1.5B": 64.00, "Qwen2-0.5B": 62.80,
    },
    "it": {
        "LLaVA-Video-72B": 68.87, "Qwen2-VL-72B": 68.64, "Qwen2-VL-7B": 67.34, "MiniCPM-V-2.6-8B": 67.25,
        "Qwen2-7B": 64.58, "InternLM2.5-7B": 64.41, "Llama3-8B": 64.16,
    },
}  # fmt: skip

# Per task ACC where the paper's text gives it: method -> model -> task -> ACC.
PER_TASK: dict[str, dict[str, dict[str, float]]] = {
    "zero-shot": {
        "Qwen2-0.5B": {"mintrec": 18.88},
        "Qwen2-1.5B": {"mintrec": 33.26},
        "Qwen2-7B": {"mintrec": 56.18},
    },
    "sft": {
        "Qwen2-0.5B": {"mintrec": 70.11, "mosi": 82.94, "mustard": 60.87, "iemocap": 46.61},
        "Qwen2-7B": {"mosi": 87.32, "mustard": 63.04, "iemocap": 52.10},
    },
    "it": {"Qwen2-VL-72B": {"mintrec": 86.29}},
}


@dataclass(frozen=True)
class PaperRow:
    """One model of the paper's Figures 2-3: overall ACC pooled over the 12 test sets."""

    model: str
    method: str  # "zero-shot" | "sft" | "it"
    overall_acc: float
    tasks: dict[str, float] = field(default_factory=dict)
    """Per-task ACC where the paper states it."""


def paper_rows(methods: Sequence[str] = ("zero-shot", "sft", "it")) -> list[PaperRow]:
    """The paper's rows for the given methods, best first."""
    rows = [
        PaperRow(model, method, acc, dict(PER_TASK.get(method, {}).get(model, {})))
        for method in methods
        for model, acc in OVERALL.get(method, {}).items()
    ]
    return sorted(rows, key=lambda r: -r.overall_acc)


def paper_model(model_id: str | None) -> str | None:
    """The paper's name of ``model_id`` (a Hub id or path), or None when the paper did not evaluate it."""
    if not model_id:
        return None
    tail = str(model_id).rstrip("/").split("/")[-1].lower()
    for name, ids in PAPER_MODELS.items():
        if tail in ids:
            return name
    return None


def fed_audio(run: RunResults) -> bool:
    """Whether the model heard the clips' audio (``--modalities`` with audio), which no paper model did."""
    return bool(run.modalities and "audio" in run.modalities)


def modality_mark(run: RunResults) -> str | None:
    """How a ranked row of a run fed audio is marked (``text+video+audio``); None for the paper's modalities."""
    return "+".join(run.modalities or ()) if fed_audio(run) else None


def paper_problems(runs: RunResults | Sequence[RunResults]) -> list[str]:
    """Why a run (or one model's runs on different tasks) cannot be ranked with the paper; empty: it can."""
    runs = [runs] if isinstance(runs, RunResults) else list(runs)
    problems: list[str] = []
    for run in runs:
        source = run.data_source
        if source.kind == "sample":
            problems.append("a synthetic sample release (`mmla data sample`), not the MMLA release")
        elif source.kind == "user":
            problems.append(f"{source.describe()}, not a verified fetch of {MMLA_HUB_REPO} (`mmla data fetch`)")
        elif source.kind == "unknown":
            problems.append(
                "data whose origin its results.json does not record (written by an older mmla; rerun `mmla eval` "
                "into the same folder to record it, cached predictions are reused)"
            )
        if run.split != PAPER_SPLIT:
            problems.append(f"the {run.split} split, not {PAPER_SPLIT}")
        style = run.prompt_style
        if style not in PAPER_STYLES.get(run.method, frozenset()):
            problems.append(f"the `{style}` prompt style, not the upstream code's")
        off = [f"{k.replace('_', ' ')} `{getattr(run, k)}`" for k, v in PAPER_PROTOCOL.items() if getattr(run, k) != v]
        if off:
            problems.append(
                f"{' and '.join(off)}, not upstream (the paper's code; `mmla eval --upstream-labels --parse-mode "
                "upstream`)"
            )
    audio = [r for r in runs if fed_audio(r)]
    if audio:
        shown = sorted({",".join(r.modalities or ()) for r in audio})
        which = "" if len(audio) == len(runs) else " in the runs marked with their modalities"
        problems.append(
            f"the clips' audio{which} (`--modalities {'` / `'.join(shown)}`): audio fed, while the paper's models "
            "saw text and video only (the upstream code feeds no audio)"
        )
    covered = {t for r in runs for t in r.tasks}
    if covered != set(TASKS):
        problems.append(f"{len(covered)} of the {len(TASKS)} tasks")
    return list(dict.fromkeys(problems))


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{float(value):.2f}"


def paper_comparison(runs: RunResults | Sequence[RunResults], *, top: int = 5) -> str:
    """Markdown: the run against the paper (its model's per-task ACC where the paper gives it, the best rows).

    ``runs``: one run, or one model's runs on different tasks (pooled from counts). The text says plainly
    when the run is not comparable with the paper, and why; differences are shown only when it is.
    """
    runs = [runs] if isinstance(runs, RunResults) else list(runs)
    run = runs[0]
    problems = paper_problems(runs)
    name = paper_model(run.base_model) or paper_model(run.model)
    group = ("zero-shot",) if run.method == "zero-shot" else ("sft", "it")
    setting = f"{PAPER_SPLIT} split of all {len(TASKS)} tasks of the official release, upstream prompts and parsing"
    lines = [f"Reference numbers from {PAPER_SOURCE}, [{PAPER_URL}]({PAPER_URL}) ({setting})."]
    if problems:
        lines[0] += (
            f" **Not comparable:** this run used {'; '.join(problems)}. The paper's numbers are shown for "
            "reference only."
        )
    lines.append("")
    rows = paper_rows(group)
    same = [r for r in rows if r.model == name and r.method == run.method]
    per_task = [
        (k, same[0].tasks[k], t.metrics.get("acc"))
        for r in runs
        for k, t in r.tasks.items()
        if same and k in same[0].tasks
    ]
    if per_task:
        delta = not problems
        lines += [
            f"| task | paper ACC ({name}, {run.method_label}) | this run ACC |" + (" Δ |" if delta else ""),
            "|---|---:|---:|" + ("---:|" if delta else ""),
        ]
        for key, paper, ours in per_task:
            cells = f"| `{key}` | {_fmt(paper)} | {_fmt(ours)} |"
            if delta and ours is not None:
                cells += f" {float(ours) - paper:+.2f} |"
            lines.append(cells)
        lines.append("")
    lines += ["| model | method | overall ACC |", "|---|---|---:|"]
    shown = rows[:top] + [r for r in rows[top:] if r.model == name]
    lines += [
        f"| {r.model} (paper) | {r.method if r.method == 'zero-shot' else r.method.upper()} | {_fmt(r.overall_acc)} |"
        for r in shown
    ]
    overall = pooled_over(runs)
    lines.append(f"| **this run** ({overall.n} samples) | {run.method_label} | **{_fmt(overall.acc)}** |")
    return "\n".join(lines)
