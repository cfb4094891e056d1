"""The MMLA prompt, built in one place, in three styles.

Zero-shot evaluation, SFT and instruction tuning all call :func:`build_prompt` and
:func:`build_target`, so a model is trained on exactly the text it is evaluated on.

Styles (SPEC.md, "Prompts"):

- ``upstream`` (default): the string upstream ``src/Zero-shot_Inference/*/infer.py`` builds, byte for
  byte: it produced the paper's numbers. A period is always appended to the utterance; no space before
  ``Respond``; two spaces before ``Only``.
- ``upstream_sft``: the human turn of the upstream LLaMA-Factory files (``<Dataset>_<split>_<task>_
  llamafactory.json``) after the ``<video>`` tag: same words, the utterance followed by one space (its
  own punctuation, if any, is kept; none added), single spaces before ``Respond`` and ``Only``.
- ``paper``: Appendix D of the paper (``mmla`` is its former name and still accepted).

The candidate list is the task's full label list in registry (upstream) order. ``label_set="upstream"``
reproduces upstream zero-shot's CH-SIMS list, which omits ``neutral`` (a bug; for exact reproduction only).
"""

from __future__ import annotations

from typing import Any, Literal

from mmla.loaders.tasks import TaskSpec

PromptStyle = Literal["upstream", "upstream_sft", "paper"]
LabelSet = Literal["full", "upstream"]

DEFAULT_STYLE = "upstream"
"""Default of ``mmla eval`` and :func:`mmla.eval.runner.evaluate_tasks`: comparable with the paper's numbers."""
DEFAULT_TRAIN_STYLE = "upstream_sft"
"""Default of training (SFT/IT rows and model selection): the prompt of the upstream fine-tuning files."""

TEMPLATES: dict[str, str] = {
    # src/Zero-shot_Inference/LLM/infer.py (and the Qwen2-VL, MiniCPM-V, VideoLLaMA2 infer.py), thuiar/MMLA@48efd63.
    "upstream": (
        "You are presented with a video in which the speaker says: {text}."
        " Based on the text, video, and audio content, what is the {dimension} of this speaker?\n"
        "The candidate labels for {dimension} are: [{labels}]."
        "Respond in the format: '{dimension}: [label]'. "
        " Only one label should be provided."
    ),
    # The human turn of the upstream LLaMA-Factory video files, after "<video>".
    "upstream_sft": (
        "You are presented with a video in which the speaker says: {text}"
        " Based on the text, video, and audio content, what is the {dimension} of this speaker?\n"
        "The candidate labels for {dimension} are: [{labels}]."
        " Respond in the format: '{dimension}: [label]'."
        " Only one label should be provided."
    ),
    # Appendix D of the paper.
    "paper": (
        "You are presented with a video in which the speaker says: {text}. "
        "Based on the textual, visual, and audio content, what is the {dimension} of this speaker?\n"
        "The candidate labels for {dimension} are: {labels}.\n"
        "Respond in the following format: {dimension}: label. Only one label should be provided."
    ),
}
PROMPT_STYLES: tuple[str, ...] = tuple(TEMPLATES)
STYLE_ALIASES = {"mmla": "paper"}
"""Former names still accepted (results written before the rename say ``mmla``)."""
LABEL_SETS: tuple[str, ...] = ("full", "upstream")

UPSTREAM_ZERO_SHOT_LABELS: dict[str, tuple[str, ...]] = {"chsims2": ("positive", "negative")}
"""Candidate lists of upstream zero-shot ``infer.py`` that differ from the task's labels (``labels_map['Ch-sims']``)."""


def normalize_style(style: str | None) -> str:
    """The canonical name of a prompt style (``None`` -> the default); unknown names raise ``ValueError``."""
    if style is None:
        return DEFAULT_STYLE
    name = STYLE_ALIASES.get(style, style)
    if name not in TEMPLATES:
        raise ValueError(f"unknown prompt style {style!r}; choose one of {', '.join(PROMPT_STYLES)}")
    return name


def candidate_labels(task: TaskSpec, label_set: LabelSet | str = "full") -> tuple[str, ...]:
    """The labels a prompt lists: the task's own, or (``"upstream"``) upstream zero-shot's list."""
    if label_set == "full":
        return task.labels
    if label_set == "upstream":
        return UPSTREAM_ZERO_SHOT_LABELS.get(task.key, task.labels)
    raise ValueError(f"unknown label set {label_set!r}; choose one of {', '.join(LABEL_SETS)}")


def build_prompt(
    task: TaskSpec, text: str, style: PromptStyle | str = DEFAULT_STYLE, *, label_set: LabelSet | str = "full"
) -> str:
    """The instruction for one utterance.

    Upstream styles keep the utterance exactly as given (upstream does not strip it); ``paper`` strips it.
    """
    name = normalize_style(style)
    labels = ", ".join(candidate_labels(task, label_set))
    text = str(text) if name.startswith("upstream") else str(text).strip()
    return TEMPLATES[name].format(text=text, dimension=task.dimension_text, labels=labels)


def build_target(task: TaskSpec, label: str | int) -> str:
    """The training target / rank-scoring continuation: ``"<dimension>: <label>"``."""
    name = task.labels[label] if isinstance(label, int) else task.canonical(label) or label
    return f"{task.dimension_text}: {name}"


def build_messages(
    task: TaskSpec,
    text: str,
    *,
    num_videos: int = 0,
    style: PromptStyle | str = DEFAULT_STYLE,
    label_set: LabelSet | str = "full",
) -> list[dict[str, Any]]:
    """A one-turn chat: video placeholders first (one per clip), then the instruction.

    Text-only models get plain string content so any tokenizer chat template works;
    MLLMs get typed content blocks as transformers processors expect.
    """
    prompt = build_prompt(task, text, style, label_set=label_set)
    if num_videos == 0:
        return [{"role": "user", "content": prompt}]
    content: list[dict[str, Any]] = [{"type": "video"} for _ in range(num_videos)]
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]
