"""Readers (JSONL, LLaMA-Factory, release TSV), bad input, restricted corpora, caching."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from mmla.loaders import load_task
from mmla.loaders.sources import SourceError, find_source
from mmla.loaders.sources.llamafactory import extract_label, extract_text
from mmla.loaders.tasks import get_task


def _copy_task(sample_release: Path, key: str, dest: Path) -> Path:
    task = get_task(key)
    shutil.copytree(sample_release / task.release_dir, dest / task.release_dir)
    return dest


def test_jsonl_reader_on_real_lines(shared_data, tmp_path):
    for split in ("train", "validation"):
        lines = (shared_data / "mintrec" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:25]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = [json.loads(x) for x in lines]
    ds = load_task("mintrec", data=tmp_path, text_only=True, split="validation")
    assert find_source(tmp_path, get_task("mintrec")).layout == "jsonl"
    assert ds["text"] == [r["text"] for r in src]
    assert [ds.features["label"].int2str(i) for i in ds["label"]] == [r["label"] for r in src]
    assert ds["clip_id"] == [r["video"] for r in src] and set(ds["task"]) == {"mintrec"}


def test_jsonl_csv_aliases_and_case(tmp_path):
    (tmp_path / "test.csv").write_text("id,text,label,speaker\na,hello,Apologize,x\nb,bye,ASK FOR HELP,y\n")
    ds = load_task("mintrec", data=tmp_path, text_only=True, split="test")
    assert [ds.features["label"].int2str(i) for i in ds["label"]] == ["apologise", "ask for help"]
    assert ds["speaker"] == ["x", "y"]


LF_ITEMS = [
    {"id": 0, "video": "MIntRec_S05_E16_329.mp4", "conversations": [
        {"from": "human", "value": "<video>\nYou are presented with a video in which the speaker says: apparently. "
         "teens are drinking. Based on the text, video, and audio content, what is the intent of this speaker?\n"
         "The candidate labels for intent are: [complain, praise]. Respond in the format: 'intent: [label]'."},
        {"from": "gpt", "value": "intent: inform"}]},
    {"id": 1, "video": "MIntRec_x.mp4", "conversations": [
        {"from": "human", "value": "we are the manager"}, {"from": "gpt", "value": "Introduce"}]},
    {"id": 2, "conversations": [
        {"from": "human", "value": "The speaker says: \"sorry, man\". Based on the text, what is the intent?"},
        {"from": "gpt", "value": "intent: apologize."}]},
]  # fmt: skip


def test_llamafactory_reader(tmp_path):
    for split in ("train", "dev", "test"):
        (tmp_path / f"MIntRec_{split}_text_intent_llamafactory.json").write_text(json.dumps(LF_ITEMS, indent=4))
    src = find_source(tmp_path, get_task("mintrec"))
    assert src.layout == "llamafactory" and set(src.splits) == {"train", "validation", "test"}
    ds = load_task("mintrec", data=tmp_path, text_only=True, split="test")
    assert ds["text"] == ["apparently. teens are drinking", "we are the manager", "sorry, man"]
    assert [ds.features["label"].int2str(i) for i in ds["label"]] == ["inform", "introduce", "apologise"]
    assert ds["clip_id"] == ["MIntRec_S05_E16_329.mp4", "MIntRec_x.mp4", None]


def test_llamafactory_extractors():
    task = get_task("meld_da")
    assert extract_label("dialogue act: statement-opinion", task) == "statement-opinion"
    assert extract_label("[backchannel]", task) == "backchannel"
    assert extract_text("Text: hi there\nWhat is it?") == "hi there"


def test_llamafactory_bad_json_names_line(tmp_path):
    (tmp_path / "MIntRec_test_text_intent_llamafactory.json").write_text('[\n {"id": 0,\n  "conversations": [}\n]')
    with pytest.raises(SourceError, match=r"llamafactory.json:3: invalid JSON"):
        load_task("mintrec", data=tmp_path, text_only=True)


def test_bad_rows_name_file_and_line(tmp_path):
    good = {"id": 1, "text": "hi", "label": "greet"}
    cases = {
        "not json {": r"test.jsonl:2: invalid JSON",
        json.dumps({"id": 2, "label": "greet"}): r"test.jsonl:2: missing field 'text'",
        json.dumps({"id": 3, "text": "x", "label": "shout"}): r"test.jsonl:2: unknown label 'shout'",
    }
    for bad, pattern in cases.items():
        (tmp_path / "test.jsonl").write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(SourceError, match=pattern):
            load_task("mintrec", data=tmp_path, text_only=True, cache_dir=tmp_path / "cache")


def test_wrong_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(SourceError, match=r"no data for task 'meld'.*MELD/"):
        load_task("meld", data=tmp_path, text_only=True)
    (tmp_path / "MELD").mkdir()
    (tmp_path / "MELD" / "test.tsv").write_text("id\tfoo\n1\tbar\n")
    with pytest.raises(SourceError, match=r"test.tsv:1: header .* no text column"):
        load_task("meld", data=tmp_path, text_only=True)


def test_missing_and_corrupt_video(sample_release, tmp_path):
    root = _copy_task(sample_release, "mustard", tmp_path / "rel")
    videos = sorted((root / "MUStARD" / "video").glob("MUStARD_test_*.mp4"))
    videos[0].unlink()
    with pytest.raises(SourceError, match=rf"test.tsv:2: video '{videos[0].name}' not found"):
        load_task("mustard", data=root, cache_dir=tmp_path / "c1")
    shutil.copyfile(videos[1], videos[0])
    videos[1].write_bytes(b"corrupt" * 100)
    with pytest.raises(SourceError, match=rf"{videos[1].name}: cannot decode"):
        load_task("mustard", data=root, cache_dir=tmp_path / "c2")
    ds = load_task("mustard", data=root, cache_dir=tmp_path / "c3", skip_bad=True, split="test")
    assert len(ds) == 3 and videos[1].name not in ds["clip_id"]


def test_restricted_corpus_requires_videos(sample_release, tmp_path):
    for key in ("mosi", "iemocap", "iemocap_da", "annomi_client"):
        task = get_task(key)
        with pytest.raises(FileNotFoundError) as err:
            load_task(key, data=sample_release)
        msg = str(err.value)
        assert task.video.source_url in msg and task.video.license in msg and "<manual_dir>/<clip id>.mp4" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"MOSI_train_0000.mp4' not found.*cmu-mosi"):
        load_task("mosi", data=sample_release, videos=empty, cache_dir=tmp_path / "c")


def test_cache_distinguishes_sources_and_edits(sample_release, tmp_path):
    a = _copy_task(sample_release, "mustard", tmp_path / "a")
    b = _copy_task(sample_release, "mustard", tmp_path / "b")
    tsv = b / "MUStARD" / "test.tsv"
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join(lines[:3]) + "\n")
    cache = tmp_path / "cache"
    assert len(load_task("mustard", data=a, text_only=True, split="test", cache_dir=cache)) == 4
    assert len(load_task("mustard", data=b, text_only=True, split="test", cache_dir=cache)) == 2
    tsv.write_text("\n".join(lines[:2]) + "\n")  # edit in place: must not reuse the cached build
    assert len(load_task("mustard", data=b, text_only=True, split="test", cache_dir=cache)) == 1
    ds = load_task("mustard", data=a, text_only=True, split="test", cache_dir=cache)
    assert Counter(ds["label"]) == {0: 2, 1: 2}
