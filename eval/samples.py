"""What one evaluation sample becomes: the prompt the model sees, the hash that keys its cached answer, its gold label.

The hash covers the prompt text and every setting that changes the answer (:class:`EvalSettings`), so a cached
prediction is reused only when the model would be asked the same thing the same way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mmla.eval.adapters.base import ModelAdapter
from mmla.eval.prompts import DEFAULT_STYLE, build_messages
from mmla.loaders.tasks import TaskSpec

__all__ = ["SKIPPED", "EvalSettings", "Sample", "build_samples"]

SKIPPED = "skipped"
"""The prediction of a sample skipped with ``--skip-bad`` (its video failed to decode); not scored."""


@dataclass(frozen=True)
class EvalSettings:
    """Everything that changes a model's answer besides the prompt text (part of each row's hash)."""

    model: str
    adapter: str | None = None
    mode: str = "generate"
    max_new_tokens: int = 16
    text_only: bool = True
    num_frames: int | None = None
    fps: float | None = None
    prompt_style: str = DEFAULT_STYLE
    label_set: str = "full"
    use_chat_template: bool = True

    def fingerprint(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Sample:
    """One row of one task's split, ready to be scored."""

    index: int  # row index in the split
    id: str
    text: str
    gold: str
    prompt: str
    hash: str
    messages: list[dict[str, Any]] = field(repr=False)
    task: TaskSpec | None = field(default=None, repr=False)
    ds: Any = field(default=None, repr=False)


def _gold(task: TaskSpec, ds: Any, value: Any) -> str:
    if isinstance(value, int):
        feature = ds.features.get("label")
        names = getattr(feature, "names", None) or task.labels
        return task.canonical(names[value]) or names[value]
    canon = task.canonical(str(value))
    if canon is None:
        raise ValueError(f"task {task.key}: gold label {value!r} is not one of {list(task.labels)}")
    return canon


def sample_hash(settings: EvalSettings, prompt: str) -> str:
    return hashlib.sha256(f"{settings.fingerprint()}\n{prompt}".encode()).hexdigest()[:16]


def build_samples(adapter: ModelAdapter, task: TaskSpec, ds: Any, settings: EvalSettings) -> list[Sample]:
    """Every row of ``ds`` as a :class:`Sample`, in split order."""
    table = ds.select_columns(["id", "text", "label"]).to_dict()
    nvid = 0 if settings.text_only else 1
    out = []
    for i, (rid, text, label) in enumerate(zip(table["id"], table["text"], table["label"], strict=True)):
        messages = build_messages(
            task, text, num_videos=nvid, style=settings.prompt_style, label_set=settings.label_set
        )
        prompt = adapter.prompt_text(messages)
        gold = _gold(task, ds, label)
        out.append(Sample(i, str(rid), text, gold, prompt, sample_hash(settings, prompt), messages, task, ds))
    return out
