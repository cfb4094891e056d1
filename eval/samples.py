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
    modalities: str | None = None
    """Comma-separated, when the model is shown audio or audio without frames; None: text, or text + video
    (``text_only`` says which), so runs without audio keep their hashes."""
    allow_silent: bool = False

    def fingerprint(self) -> str:
        fields = asdict(self)
        for name in ("modalities", "allow_silent"):  # left out at their defaults: earlier caches stay valid
            if not fields[name]:
                del fields[name]
        return json.dumps(fields, sort_keys=True)

    @property
    def shows(self) -> tuple[str, ...]:
        """The modalities the model is shown."""
        if self.modalities:
            return tuple(self.modalities.split(","))
        return ("text",) if self.text_only else ("text", "video")


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


def _gold(task: TaskSpec, names: Any, value: Any) -> str:
    if isinstance(value, int):
        names = names or task.labels
        return task.canonical(names[value]) or names[value]
    canon = task.canonical(str(value))
    if canon is None:
        raise ValueError(f"task {task.key}: gold label {value!r} is not one of {list(task.labels)}")
    return canon


def sample_hash(settings: EvalSettings, prompt: str, fingerprint: str | None = None) -> str:
    """``fingerprint``: ``settings.fingerprint()`` computed once by the caller (it is the same for every row)."""
    fingerprint = settings.fingerprint() if fingerprint is None else fingerprint
    return hashlib.sha256(f"{fingerprint}\n{prompt}".encode()).hexdigest()[:16]


def video_blocks_to_audio(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat with each video placeholder turned into an audio one (the clip shown as its audio track alone)."""
    out = []
    for m in messages:
        content = m["content"]
        if not isinstance(content, str):
            content = [{**c, "type": "audio"} if c.get("type") == "video" else c for c in content]
        out.append({**m, "content": content})
    return out


def build_samples(adapter: ModelAdapter, task: TaskSpec, ds: Any, settings: EvalSettings) -> list[Sample]:
    """Every row of ``ds`` as a :class:`Sample`, in split order."""
    table = ds.select_columns(["id", "text", "label"]).to_dict()
    nvid = 0 if settings.text_only else 1
    # Once per split, not per row: Dataset.features deep-copies the features (half the time of 12,000 rows).
    names = getattr(ds.features.get("label"), "names", None)
    fingerprint = settings.fingerprint()
    out = []
    for i, (rid, text, label) in enumerate(zip(table["id"], table["text"], table["label"], strict=True)):
        messages = build_messages(
            task, text, num_videos=nvid, style=settings.prompt_style, label_set=settings.label_set
        )
        if (
            nvid and "video" not in settings.shows
        ):  # the clip's audio track alone (Qwen2-Audio, --modalities text,audio)
            messages = video_blocks_to_audio(messages)
        prompt = adapter.prompt_text(messages)
        gold = _gold(task, names, label)
        out.append(
            Sample(i, str(rid), text, gold, prompt, sample_hash(settings, prompt, fingerprint), messages, task, ds)
        )
    return out
