"""Answer -> label, in two modes.

``aliases`` (default): lower-case the answer and look for every label *and alias* (``apologize`` ->
``apologise``, ``sad`` -> ``sadness``) as a whole word; exactly one distinct label is the prediction,
none is ``unknown``, several is ``multi``.

``upstream``: exactly upstream ``clean()`` in ``src/Zero-shot_Inference/eval.py``: the same whole-word
search (``(?<!\\w)label(?!\\w)``, lower-cased) over the task's labels only, no aliases, each label searched
independently. With ``--upstream-metrics`` it reproduces upstream ``eval.py``'s numbers on the same raw
answers (tests/test_eval_parsing.py checks this against a port of ``eval.py``).

Both pseudo-labels count as wrong and are never classes (unless upstream metrics are asked for).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from mmla.loaders.tasks import TaskSpec

UNKNOWN = "unknown"
MULTI = "multi"
PARSE_MODES: tuple[str, ...] = ("aliases", "upstream")
ParseMode = Literal["aliases", "upstream"]


@lru_cache(maxsize=64)
def _patterns(task: TaskSpec) -> tuple[tuple[re.Pattern[str], str], ...]:
    # Longer surface forms first so "statement-non-opinion" is not also read as "statement-opinion".
    forms = sorted(task.surface_forms.items(), key=lambda kv: -len(kv[0]))
    return tuple((re.compile(rf"(?<!\w){re.escape(form)}(?!\w)"), canon) for form, canon in forms)


@lru_cache(maxsize=64)
def _upstream_patterns(task: TaskSpec) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(r"(?<!\w)" + re.escape(label.lower()) + r"(?!\w)"), label) for label in task.labels)


def _parse_upstream(task: TaskSpec, answer: str) -> str:
    text = str(answer).lower()
    found = [label for pattern, label in _upstream_patterns(task) if pattern.search(text)]
    if not found:
        return UNKNOWN
    return found[0] if len(found) == 1 else MULTI


def parse_answer(task: TaskSpec, answer: str, mode: ParseMode | str = "aliases") -> str:
    """Map a free-text answer to a canonical label, ``unknown`` or ``multi``."""
    if mode == "upstream":
        return _parse_upstream(task, answer)
    if mode != "aliases":
        raise ValueError(f"unknown parse mode {mode!r}; choose one of {', '.join(PARSE_MODES)}")
    text = str(answer).lower()
    found: set[str] = set()
    for pattern, canon in _patterns(task):
        hits = list(pattern.finditer(text))
        if not hits:
            continue
        found.add(canon)
        # Blank matched spans so shorter forms inside a longer one ("opinion" in "statement-opinion") do not match.
        for m in reversed(hits):
            text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
    if not found:
        return UNKNOWN
    if len(found) > 1:
        return MULTI
    return found.pop()
