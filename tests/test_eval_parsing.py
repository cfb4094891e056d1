"""Answer parsing as the upstream evaluation does it (whole words, aliases, unknown/multi)."""

from __future__ import annotations

import pytest

from mmla.eval.parsing import MULTI, UNKNOWN, parse_answer
from mmla.eval.prompts import build_messages, build_prompt, build_target
from mmla.loaders.tasks import TASKS, get_task


@pytest.mark.parametrize(
    ("task", "answer", "expected"),
    [
        ("mintrec", "intent: joke", "joke"),
        ("mintrec", "Intent: COMPLAIN.", "complain"),
        ("mintrec", "The speaker wants to apologize", "apologise"),  # alias
        ("mintrec", "intent: ask for help", "ask for help"),
        ("mintrec", "jokes aside, nothing", UNKNOWN),  # whole words only
        ("mintrec", "", UNKNOWN),
        ("mintrec", "intent: joke or taunt", MULTI),
        ("mintrec", "joke, joke, joke", "joke"),  # one distinct label
        ("meld_da", "dialogue act: statement-non-opinion", "statement-non-opinion"),
        ("meld_da", "statement-opinion", "statement-opinion"),
        ("meld", "emotion: sad", "sadness"),
        ("mosi", "sentiment: positive", "positive"),
        ("mosi", "positive or negative", MULTI),
        ("annomi_therapist", "communication behavior: input", "therapist_input"),
        ("mustard", "speaking style: sarcasm", "sarcastic"),
        ("mustard", "insincere", UNKNOWN),
    ],
)
def test_parse_answer(task: str, answer: str, expected: str) -> None:
    assert parse_answer(get_task(task), answer) == expected


@pytest.mark.parametrize("task", list(TASKS))
def test_every_target_parses_back_to_its_label(task: str) -> None:
    spec = get_task(task)
    for label in spec.labels:
        assert parse_answer(spec, build_target(spec, label)) == label


def test_prompt_lists_every_label_and_video_placeholders() -> None:
    spec = get_task("chsims2")
    prompt = build_prompt(spec, "hello")
    assert all(lab in prompt for lab in spec.labels)  # full label list (upstream lists only 2 for CH-SIMS)
    msgs = build_messages(spec, "hello", num_videos=2)
    assert [c["type"] for c in msgs[0]["content"]] == ["video", "video", "text"]
    assert build_messages(spec, "hello")[0]["content"] == prompt
