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


# ------------------------------------------------------------------------------------------- prompt styles
def _upstream_infer_prompt(context: str, task: str, task_labels) -> str:
    """The instruction of upstream src/Zero-shot_Inference/LLM/infer.py (thuiar/MMLA@48efd63), line for line."""
    modify_task = " ".join(task.split("_"))
    instruction = f"You are presented with a video in which the speaker says: {context}."
    instruction += f" Based on the text, video, and audio content, what is the {modify_task} of this speaker?\n"
    instruction += f"The candidate labels for {modify_task} are: [{', '.join(task_labels)}]."
    instruction += f"Respond in the format: '{modify_task}: [label]'. "
    instruction += " Only one label should be provided."
    return instruction


TEXTS = ["that's a really good point.", "i definitely will buy it", "你好 世界", "  two  spaces , trailing  ", "a\tb"]


@pytest.mark.parametrize("task", list(TASKS))
def test_upstream_style_is_the_upstream_zero_shot_string(task: str) -> None:
    spec = get_task(task)
    for text in TEXTS:
        assert build_prompt(spec, text, "upstream") == _upstream_infer_prompt(text, spec.dimension, spec.labels)
    assert build_prompt(spec, "x") == build_prompt(spec, "x", "upstream")  # the default


def test_upstream_style_bytes() -> None:
    got = build_prompt(get_task("mosi"), "i definitely will buy it", "upstream")
    assert got == (
        "You are presented with a video in which the speaker says: i definitely will buy it. Based on the text, "
        "video, and audio content, what is the sentiment of this speaker?\nThe candidate labels for sentiment are: "
        "[positive, negative].Respond in the format: 'sentiment: [label]'.  Only one label should be provided."
    )


def test_upstream_labels_reproduce_upstreams_ch_sims_list() -> None:
    spec = get_task("chsims2")
    full, upstream = build_prompt(spec, "好", label_set="full"), build_prompt(spec, "好", label_set="upstream")
    assert f"[{', '.join(spec.labels)}]" in full and len(spec.labels) == 3
    assert "[positive, negative]" in upstream and "neutral" not in upstream  # upstream infer.py's Ch-sims list
    for key in TASKS:  # the only task whose upstream zero-shot list differs
        if key != "chsims2":
            assert build_prompt(get_task(key), "x", label_set="upstream") == build_prompt(get_task(key), "x")
    with pytest.raises(ValueError, match="unknown label set"):
        build_prompt(spec, "x", label_set="half")


def test_paper_style_and_aliases() -> None:
    spec = get_task("mintrec")
    paper = build_prompt(spec, " hello ", "paper")
    assert paper.startswith("You are presented with a video in which the speaker says: hello. Based on the textual")
    assert "Respond in the following format: intent: label. Only one label should be provided." in paper
    assert build_prompt(spec, " hello ", "mmla") == paper  # former name
    with pytest.raises(ValueError, match=r"unknown prompt style 'mmla_text'; choose one of upstream, upstream_sft"):
        build_prompt(spec, "x", "mmla_text")


UPSTREAM_FILES = {  # task -> the upstream LLaMA-Factory dev file of its video variant
    "mintrec": "MIntRec_dev_intent_llamafactory.json",
    "meld": "MELD_dev_emotion_llamafactory.json",
    "iemocap": "IEMOCAP_dev_emotion_llamafactory.json",
    "mosi": "MOSI_dev_sentiment_llamafactory.json",
    "mustard": "MUStARD_dev_speaking_style_llamafactory.json",
}


@pytest.mark.parametrize("task", list(UPSTREAM_FILES))
def test_upstream_sft_style_reproduces_the_real_fine_tuning_files(task: str) -> None:
    """Every human turn (after <video>) and answer of the real upstream file, from the text and label alone."""
    import json

    from conftest import SHARED_DATA, SHARED_UPSTREAM

    path = SHARED_UPSTREAM / "llamafactory" / UPSTREAM_FILES[task]
    gold = SHARED_DATA / task / "validation.jsonl"
    if not path.is_file() or not gold.is_file():
        pytest.skip(f"{path} or {gold} not available")
    spec = get_task(task)
    items = json.loads(path.read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines()]
    assert len(items) == len(rows) > 100
    lists = set()
    for item, row in zip(items, rows, strict=True):
        human, answer = item["conversations"][0]["value"], item["conversations"][1]["value"]
        assert human == "<video>" + build_prompt(spec, row["text"], "upstream_sft"), row["id"]
        assert answer == build_target(spec, row["label"])
        lists.add(human.rsplit("The candidate labels for ", 1)[1].split("]")[0])
    assert lists == {f"{spec.dimension_text} are: [{', '.join(spec.labels)}"}  # the files list the registry's labels


# ------------------------------------------------------------------------------- upstream parsing mode
@pytest.mark.parametrize(
    ("task", "answer", "aliases", "upstream"),
    [
        ("mintrec", "The speaker wants to apologize", "apologise", UNKNOWN),  # no aliases upstream
        ("mintrec", "intent: apologise", "apologise", "apologise"),
        ("mintrec", "Intent: [COMPLAIN]", "complain", "complain"),
        ("mintrec", "intent: joke or taunt", MULTI, MULTI),
        ("mintrec", "joke, joke", "joke", "joke"),
        ("mintrec", "", UNKNOWN, UNKNOWN),
        ("meld", "emotion: sad", "sadness", UNKNOWN),
        ("meld_da", "dialogue act: statement-non-opinion", "statement-non-opinion", "statement-non-opinion"),
        ("annomi_therapist", "communication behavior: input", "therapist_input", UNKNOWN),
        ("annomi_therapist", "therapist_input", "therapist_input", "therapist_input"),
        ("chsims2", "sentiment: neutral", "neutral", "neutral"),  # upstream eval.py parses all three
    ],
)
def test_upstream_parse_mode(task: str, answer: str, aliases: str, upstream: str) -> None:
    spec = get_task(task)
    assert parse_answer(spec, answer) == parse_answer(spec, answer, "aliases") == aliases
    assert parse_answer(spec, answer, "upstream") == upstream


def test_unknown_parse_mode() -> None:
    with pytest.raises(ValueError, match="unknown parse mode 'strict'"):
        parse_answer(get_task("mosi"), "positive", "strict")


# A port of upstream src/Zero-shot_Inference/eval.py (thuiar/MMLA@48efd63): predictions and "<dim>: <label>"
# gold strings -> the TSV it writes -> pandas -> clean() -> cal_metrics(). The reference the upstream mode must match.
def _upstream_eval_py(tmp_path, labels_of_task, golds_text, raws):
    import csv
    import re

    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    labels = [g.split(":")[1].strip().lower() for g in golds_text]  # process_predictions
    predicts = [r.lower() for r in raws]
    out = tmp_path / "upstream_results.tsv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["Video", "Pred", "Label"], delimiter="\t")
        writer.writeheader()
        for i, (label, pred) in enumerate(zip(labels, predicts, strict=True)):
            writer.writerow({"Video": f"v{i}.mp4", "Pred": pred, "Label": label})
    df = pd.read_csv(out, sep="\t")
    processed = []
    for i in range(len(df)):  # clean()
        pred = str(df.loc[i, "Pred"]).lower()
        match_list = []
        for label in labels_of_task:
            if re.search(r"(?<!\w)" + re.escape(label.lower()) + r"(?!\w)", pred):
                match_list.append(label.lower())
        processed.append("unknown" if not match_list else match_list[0] if len(match_list) == 1 else "multi")
    y_pred = [str(p).lower() for p in processed]  # cal_metrics()
    y_true = [str(x).lower() for x in df["Label"]]
    metrics = {
        "acc": accuracy_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred, average="macro"),
        "p": precision_score(y_true, y_pred, average="macro"),
        "r": recall_score(y_true, y_pred, average="macro"),
        "wf1": f1_score(y_true, y_pred, average="weighted"),
        "wp": precision_score(y_true, y_pred, average="weighted"),
    }
    return processed, {k: round(v * 100, 2) for k, v in metrics.items()}


def _raw_answers(spec, n: int) -> list[str]:
    """Answers of every kind a model gives: clean, decorated, aliases, several labels, none, empty."""
    labs, dim = spec.labels, spec.dimension_text
    kinds = [
        lambda i: f"{dim}: {labs[i % len(labs)]}",
        lambda i: f"{dim.title()}: [{labs[(i * 3) % len(labs)].upper()}]",
        lambda i: f"I think the answer is {labs[i % len(labs)]}, not {labs[(i + 1) % len(labs)]}.",
        lambda i: "",
        lambda i: "I'm sorry, I can't tell.\nMaybe apologize?",
        lambda i: f'"{labs[(i + 2) % len(labs)]}"\t(confident)',
        lambda i: "None",
        lambda i: f"{dim}: {labs[i % len(labs)]}s",  # plural: not a whole word
    ]
    return [kinds[i % len(kinds)](i) for i in range(n)]


@pytest.mark.parametrize("task", ["mintrec", "meld", "meld_da", "chsims2", "annomi_therapist", "mosi"])
def test_upstream_mode_with_upstream_metrics_reproduces_upstream_eval_py(task: str, tmp_path) -> None:
    import random

    from mmla.eval.metrics import compute_metrics

    spec = get_task(task)
    rng = random.Random(task)
    n = 64
    golds = [spec.labels[rng.randrange(len(spec.labels))] for _ in range(n)]
    raws = _raw_answers(spec, n)
    ref_pred, ref_metrics = _upstream_eval_py(tmp_path, spec.labels, [build_target(spec, g) for g in golds], raws)
    preds = [parse_answer(spec, r, "upstream") for r in raws]
    assert preds == ref_pred
    assert compute_metrics(spec, preds, golds, upstream_compatible=True) == ref_metrics
    assert {UNKNOWN, MULTI} <= set(preds)  # the set exercises both pseudo-labels
    # The alias mode parses some of these differently (e.g. "apologize"), so it cannot stand in for upstream.
    if task == "mintrec":
        assert [parse_answer(spec, r) for r in raws] != preds
