"""The MMLA prompt (Appendix D of the paper), built in one place.

Zero-shot evaluation, SFT and instruction tuning all call :func:`build_prompt`
and :func:`build_target`, so a model is trained on exactly the text it is
evaluated on.
"""

from __future__ import annotations

from typing import Any, Literal

from mmla.loaders.tasks import TaskSpec

PromptStyle = Literal["mmla", "mmla_text"]

TEMPLATES: dict[str, str] = {
    # Appendix D, for MLLMs and (by default) LLMs alike.
    "mmla": (
        "You are presented with a video in which the speaker says: {text}. "
        "Based on the textual, visual, and audio content, what is the {dimension} of this speaker?\n"
        "The candidate labels for {dimension} are: {labels}.\n"
        "Respond in the following format: {dimension}: label. Only one label should be provided."
    ),
    # The upstream text-only variant used for LLMs in the MMLA repo.
    "mmla_text": (
        "The speaker says: {text}. "
        "Based on the text, what is the {dimension} of this speaker?\n"
        "The candidate labels for {dimension} are: {labels}.\n"
        "Respond in the following format: {dimension}: label. Only one label should be provided."
    ),
}


def build_prompt(task: TaskSpec, text: str, style: PromptStyle | str = "mmla") -> str:
    """The instruction for one utterance, with the task's full label list."""
    try:
        template = TEMPLATES[style]
    except KeyError:
        raise ValueError(f"unknown prompt style {style!r}; choose one of {sorted(TEMPLATES)}") from None
    return template.format(text=str(text).strip(), dimension=task.dimension_text, labels=", ".join(task.labels))


def build_target(task: TaskSpec, label: str | int) -> str:
    """The training target / rank-scoring continuation: ``"<dimension>: <label>"``."""
    name = task.labels[label] if isinstance(label, int) else task.canonical(label) or label
    return f"{task.dimension_text}: {name}"


def build_messages(
    task: TaskSpec, text: str, *, num_videos: int = 0, style: PromptStyle | str = "mmla"
) -> list[dict[str, Any]]:
    """A one-turn chat: video placeholders first (one per clip), then the instruction.

    Text-only models get plain string content so any tokenizer chat template works;
    MLLMs get typed content blocks as transformers processors expect.
    """
    prompt = build_prompt(task, text, style)
    if num_videos == 0:
        return [{"role": "user", "content": prompt}]
    content: list[dict[str, Any]] = [{"type": "video"} for _ in range(num_videos)]
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]
