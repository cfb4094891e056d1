"""The upstream LLaMA-Factory JSON files of the MMLA repository, read exactly.

``<Dataset>_<split>[_text]_<task>_llamafactory.json`` (``src/Frameworks/LLaMA-Factory-main/data/`` of
``thuiar/MMLA``): a JSON array of ShareGPT items ``{"id", "videos": [<path>] | "video": <name>,
"conversations": [{"from": "human", "value": <prompt>}, {"from": "gpt", "value": "<dimension>: <label>"}]}``.

Upstream writes the utterance into a fixed template, with nothing added after it (no period)::

    video: "<video>You are presented with a video in which the speaker says: {text} Based on the text, video,
            and audio content, what is the {dim} of this speaker?\\nThe candidate labels for {dim} are:
            [{labels}]. Respond in the format: '{dim}: [label]'. Only one label should be provided."
    text:  "The speaker says: {text} Based on the text, what is the {dim} of this speaker?\\n... '{dim}:
            [label]'.Only one label should be provided."

so the utterance is everything between the fixed prefix and the fixed question at the END of the prompt,
built from the task's dimension names (``intent``; ``speaking style`` / ``speaking_style``; Anno-MI's
``talk_type`` / ``therapist_behaviour``) and its label list (compared case-insensitively: the text files
capitalise labels). Anchoring on the end keeps utterances that contain "Based on" whole. A prompt that
does not have this exact shape is an error naming ``file:line`` and the item index; the text is never
guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from mmla.loaders.sources import RawRow, Source, SourceError, split_of
from mmla.loaders.tasks import TaskSpec

_NAME = re.compile(
    r"^(?P<ds>.+?)_(?P<split>train|dev|valid|val|validation|test)_(?P<rest>.*llamafactory.*)\.json$", re.I
)
_MEDIA = r"(?:<(?:video|image|audio)>\s*)*"
# (prefix, question) pairs of the two upstream variants; the utterance sits between them.
_VARIANTS = (
    (_MEDIA + r"You are presented with a video in which the speaker says: ", "the text, video, and audio content"),
    (_MEDIA + r"The speaker says: ", "the text"),
)


_PREFIXES = [re.compile(prefix, re.I) for prefix, _ in _VARIANTS]
_ANCHOR = " Based on "  # case-sensitive: str.lower() may change lengths (İ), so positions would drift


@cache
def _questions(task: TaskSpec) -> list[re.Pattern[str]]:
    """The fixed question after the utterance, per variant, built from the task's dimension names."""
    dim = "|".join(re.escape(d) for d in sorted(task.dimension_names, key=len, reverse=True))
    return [
        re.compile(
            rf" Based on {re.escape(basis)}, what is the (?:{dim}) of this speaker\?\s*"
            rf"The candidate labels for (?:{dim}) are: \[(?P<labels>[^\[\]]*)\]\.\s*"
            rf"Respond in the format: '(?:{dim}): \[label\]'\.\s*Only one label should be provided\.\s*",
            re.I,
        )
        for _, basis in _VARIANTS
    ]


def _split_prompt(prompt: str, task: TaskSpec) -> tuple[str, str] | None:
    """(utterance, listed labels): the prefix at the start, the LAST full question at the end, or None."""
    for prefix, question in zip(_PREFIXES, _questions(task), strict=True):
        head = prefix.match(prompt)
        if head is None:
            continue
        pos = len(prompt)
        while (pos := prompt.rfind(_ANCHOR, head.end(), pos)) >= 0:  # from the end: "Based on" may be in the text
            m = question.fullmatch(prompt, pos)
            if m is not None:
                return prompt[head.end() : pos], m.group("labels")
    return None


def _candidates(root: Path, task: TaskSpec) -> list[Path]:
    names = {n.lower() for n in (task.release_dir, task.release_name, task.dataset, task.key)}
    dirs = [root] + [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in names | {"data"}]
    return [f for d in dirs for f in sorted(d.glob("*llamafactory*.json"))]


def find(root: Path, task: TaskSpec) -> Source | None:
    """The split files of ``task`` under ``root``; the video variant (it names the clip as the archive does) wins."""
    if not root.is_dir():
        return None
    names = {n.lower() for n in (task.release_name, task.release_dir, task.dataset, task.key)}
    found: dict[str, tuple[tuple[bool, int], Path]] = {}
    for path in _candidates(root, task):
        m = _NAME.match(path.name)
        if not m or m.group("ds").lower() not in names:
            continue
        rest = m.group("rest").lower()
        if task.dimension not in rest and task.key not in rest:
            continue
        split = split_of(m.group("split"))
        rank = (path.stat().st_size == 0, 1 if rest.startswith("text") else 0)  # an empty file only as last resort
        if split and (split not in found or rank < found[split][0]):
            found[split] = (rank, path)
    if not found:
        return None
    splits = {s: p for s, (_, p) in found.items()}
    folder = next(iter(splits.values())).parent
    video = next((folder / d for d in ("video", "videos") if (folder / d).is_dir()), None)
    return Source("llamafactory", folder, splits, video)


def _items_with_lines(path: Path) -> Iterator[tuple[int, Any]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SourceError(
            f"not UTF-8 text (byte {err.start})", path=path, line=line, hint="is this the right file?"
        ) from None
    dec = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if pos == len(text):
        raise SourceError("file is empty", path=path, hint="an interrupted download? fetch the file again")
    if text[pos] != "[":
        raise SourceError("expected a JSON array of ShareGPT items", path=path, line=1)
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            raise SourceError("unterminated JSON array", path=path, line=text.count("\n") + 1)
        if text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            item, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise SourceError(f"invalid JSON: {err.msg}", path=path, line=err.lineno, hint="fix the file") from None
        yield line, item


def extract_text(prompt: str, task: TaskSpec) -> str:
    """The utterance of an upstream MMLA prompt, exactly as upstream wrote it.

    Raises ``ValueError`` when the prompt is not one of the two upstream templates for ``task`` (or lists other
    candidate labels): the caller reports the item instead of keeping a guessed text.
    """
    parts = _split_prompt(prompt, task)
    if parts is None:
        raise ValueError(
            f"prompt does not have the upstream form '...the speaker says: <text> Based on the text..., what is "
            f"the {task.dimension_text} of this speaker? ... Only one label should be provided.'; the utterance "
            f"cannot be recovered exactly"
        )
    text, labels = parts
    listed = [x.strip() for x in labels.split(",")]
    canon = [task.canonical(x) for x in listed]
    if None in canon or sorted(canon) != sorted(task.labels):  # type: ignore[type-var]
        raise ValueError(
            f"the prompt's candidate labels {listed} are not the {len(task.labels)} labels of task {task.key!r}; "
            f"is this another task's file?"
        )
    return text


def extract_label(answer: str, task: TaskSpec) -> str:
    """The label of an upstream answer (``intent: Praise``, ``talk_type: neutral``, or a bare label)."""
    ans = answer.strip()
    low = ans.lower()
    for name in sorted(task.dimension_names, key=len, reverse=True):
        if low.startswith(name.lower() + ":"):
            ans = ans[len(name) + 1 :]
            break
    return ans.strip().strip("[]'\" .")


def _turns(item: dict, path: Path, line: int) -> tuple[str, str]:
    conv = item.get("conversations", item.get("messages"))
    if not isinstance(conv, list):
        raise SourceError("item has no 'conversations' list", path=path, line=line)
    human = gpt = None
    for turn in conv:
        if not isinstance(turn, dict):
            continue
        who = turn.get("from", turn.get("role"))
        val = turn.get("value", turn.get("content"))
        if who in ("human", "user") and human is None:
            human = val
        elif who in ("gpt", "assistant") and gpt is None:
            gpt = val
    if not isinstance(human, str) or not isinstance(gpt, str):
        raise SourceError("item needs a human/user turn and a gpt/assistant turn (strings)", path=path, line=line)
    return human, gpt


def _clip(item: dict) -> str | None:
    video = item.get("videos", item.get("video"))
    if isinstance(video, list):
        video = video[0] if video else None
    if not isinstance(video, str) or not video:
        return None
    return video.replace("\\", "/").rsplit("/", 1)[-1]  # upstream stores absolute paths of its own machine


def read(path: Path, task: TaskSpec) -> Iterator[RawRow | SourceError]:
    """Rows; an item whose text or label cannot be read is yielded as a :class:`SourceError` (invalid JSON raises)."""
    for n, (line, item) in enumerate(_items_with_lines(path)):
        if not isinstance(item, dict):
            yield SourceError(f"item {n} is not a JSON object", path=path, line=line)
            continue
        try:
            human, gpt = _turns(item, path, line)
        except SourceError as err:
            yield SourceError(f"item {n}: {err.reason}", path=path, line=line)
            continue
        try:
            text = extract_text(human, task)
        except ValueError as err:
            yield SourceError(f"item {n}: {err}", path=path, line=line, hint="fix the item or build with --skip-bad")
            continue
        label = extract_label(gpt, task)
        if not label:
            yield SourceError(f"item {n}: empty answer (label) in the gpt turn", path=path, line=line)
            continue
        uid = item.get("id", n)
        if isinstance(uid, bool) or not isinstance(uid, (str, int)):
            yield SourceError(f"item {n}: 'id' must be a string or an integer, got {uid!r}", path=path, line=line)
            continue
        yield RawRow(id=str(uid), text=text, label=label, clip=_clip(item), path=str(path), line=line)
