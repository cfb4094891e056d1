"""Answer -> label, as the upstream MMLA evaluation parses it.

Lower-case the answer and look for every label (and alias) as a whole word;
exactly one distinct label is the prediction, none is ``unknown``, several is
``multi``. Both pseudo-labels count as wrong and are never classes.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mmla.loaders.tasks import TaskSpec

UNKNOWN = "unknown"
MULTI = "multi"


@lru_cache(maxsize=64)
def _patterns(task: TaskSpec) -> tuple[tuple[re.Pattern[str], str], ...]:
    # Longer surface forms first so "statement-non-opinion" is not also read as "statement-opinion".
    forms = sorted(task.surface_forms.items(), key=lambda kv: -len(kv[0]))
    return tuple((re.compile(rf"(?<!\w){re.escape(form)}(?!\w)"), canon) for form, canon in forms)


def parse_answer(task: TaskSpec, answer: str) -> str:
    """Map a free-text answer to a canonical label, ``unknown`` or ``multi``."""
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
