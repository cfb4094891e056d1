"""The upstream LLaMA-Factory JSON files of the MMLA repository.

``<Dataset>_<split>_text_<task>_llamafactory.json`` (and the video variants without
``text_``): a JSON array of ShareGPT items ``{"id", "video" | "videos", "conversations":
[{"from": "human", "value": <prompt with the utterance>}, {"from": "gpt", "value":
"<dimension>: <label>" | "<label>"}]}``. The utterance is recovered from the prompt
("... the speaker says: <text>. Based on ...", ``Text:``/``Utterance:`` lines, or the
whole human turn, which is what ``generate_test_json.py`` writes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmla.loaders.sources import RawRow, Source, SourceError, split_of
from mmla.loaders.tasks import TaskSpec

_NAME = re.compile(
    r"^(?P<ds>.+?)_(?P<split>train|dev|valid|val|validation|test)_(?P<rest>.*llamafactory.*)\.json$", re.I
)
_SAYS = re.compile(r"speaker says:\s*(?P<t>.*)\.\s*Based on\b", re.S | re.I)
_FIELD = re.compile(r"^\s*(?:text|utterance|context)\s*:\s*(?P<t>.+?)\s*$", re.M | re.I)
_MEDIA = re.compile(r"<(?:video|image|audio)>")


def _candidates(root: Path, task: TaskSpec) -> list[Path]:
    names = {n.lower() for n in (task.release_dir, task.release_name, task.dataset, task.key)}
    dirs = [root] + [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in names | {"data"}]
    return [f for d in dirs for f in sorted(d.glob("*llamafactory*.json"))]


def find(root: Path, task: TaskSpec) -> Source | None:
    if not root.is_dir():
        return None
    names = {n.lower() for n in (task.release_name, task.release_dir, task.dataset, task.key)}
    found: dict[str, tuple[int, Path]] = {}
    for path in _candidates(root, task):
        m = _NAME.match(path.name)
        if not m or m.group("ds").lower() not in names:
            continue
        rest = m.group("rest").lower()
        if task.dimension not in rest and task.key not in rest:
            continue
        split = split_of(m.group("split"))
        rank = 1 if rest.startswith("text") else 0  # video variants name the clip; text ones may not
        if split and (split not in found or rank < found[split][0]):
            found[split] = (rank, path)
    if not found:
        return None
    splits = {s: p for s, (_, p) in found.items()}
    folder = next(iter(splits.values())).parent
    video = next((folder / d for d in ("video", "videos") if (folder / d).is_dir()), None)
    return Source("llamafactory", folder, splits, video)


def _items_with_lines(path: Path) -> Iterator[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8")
    dec = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text[pos : pos + 1] == "[":
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


def extract_text(prompt: str) -> str:
    """The utterance inside an MMLA prompt (or the prompt itself when it is just the utterance)."""
    body = _MEDIA.sub("", prompt).strip()
    m = _SAYS.search(body) or _FIELD.search(body)
    text = (m.group("t") if m else body).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def extract_label(answer: str, task: TaskSpec) -> str:
    ans = answer.strip().strip(".").strip()
    for prefix in (task.dimension_text, task.dimension):
        if ans.lower().startswith(prefix + ":"):
            ans = ans[len(prefix) + 1 :].strip()
    return ans.strip("[]'\" .")


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
        if isinstance(val, list):  # [{"type": "text", "text": ...}, {"type": "video", ...}]
            val = "\n".join(str(p.get("text", "")) for p in val if isinstance(p, dict) and p.get("type") == "text")
        if who in ("human", "user") and human is None:
            human = val
        elif who in ("gpt", "assistant") and gpt is None:
            gpt = val
    if not isinstance(human, str) or not isinstance(gpt, str):
        raise SourceError("item needs a human/user turn and a gpt/assistant turn", path=path, line=line)
    return human, gpt


def read(path: Path, task: TaskSpec) -> Iterator[RawRow | SourceError]:
    """Rows; a malformed item is yielded as a :class:`SourceError` (invalid JSON raises)."""
    for n, (line, item) in enumerate(_items_with_lines(path)):
        if not isinstance(item, dict):
            yield SourceError(f"item {n} is not a JSON object", path=path, line=line)
            continue
        try:
            human, gpt = _turns(item, path, line)
        except SourceError as err:
            yield err
            continue
        video = item.get("video") or item.get("videos")
        if isinstance(video, list):
            video = video[0] if video else None
        label = extract_label(gpt, task)
        if not label:
            yield SourceError("empty answer (label) in the gpt turn", path=path, line=line)
            continue
        yield RawRow(
            id=str(item.get("id", n)),
            text=extract_text(human),
            label=label,
            clip=Path(str(video)).name if video else None,
            path=str(path),
            line=line,
        )
