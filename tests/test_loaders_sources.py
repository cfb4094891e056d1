"""Readers (JSONL, LLaMA-Factory, release TSV) against real upstream files and bad input; the registry."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHARED_UPSTREAM

from mmla.loaders import load_task
from mmla.loaders.sources import RawRow, SourceError, find_source, mmla_release
from mmla.loaders.sources import llamafactory as lf
from mmla.loaders.tasks import LICENSES, TASKS, License, get_task

UPSTREAM_LF = SHARED_UPSTREAM / "llamafactory"
SHARED_TASKS = {  # task key -> (upstream file stem, dimension as the file names it)
    "mintrec": ("MIntRec", "intent"),
    "meld": ("MELD", "emotion"),
    "iemocap": ("IEMOCAP", "emotion"),
    "mosi": ("MOSI", "sentiment"),
    "mustard": ("MUStARD", "speaking_style"),
}


@pytest.fixture(scope="session")
def upstream_lf() -> Path:
    if not (UPSTREAM_LF / "MIntRec_dev_intent_llamafactory.json").is_file():
        pytest.skip(f"{UPSTREAM_LF} not available")
    return UPSTREAM_LF


def _copy_task(sample_release: Path, key: str, dest: Path) -> Path:
    task = get_task(key)
    shutil.copytree(sample_release / task.release_dir, dest / task.release_dir)
    return dest


def _rows(items) -> list[RawRow]:
    out = list(items)
    errors = [r for r in out if isinstance(r, SourceError)]
    assert not errors, errors[:3]
    return out


# -- LLaMA-Factory: the real upstream files --------------------------------------------------------------


@pytest.mark.parametrize("key", list(SHARED_TASKS))
def test_llamafactory_real_files_match_shared_data(key, upstream_lf, shared_data):
    """Both upstream variants give exactly the texts and labels of ../shared/data (which upstream wrote)."""
    task = get_task(key)
    stem, dim = SHARED_TASKS[key]
    ref = [json.loads(x) for x in (shared_data / key / "validation.jsonl").read_text(encoding="utf-8").splitlines()]
    video = _rows(lf.read(upstream_lf / f"{stem}_dev_{dim}_llamafactory.json", task))
    text = _rows(lf.read(upstream_lf / f"{stem}_dev_text_{dim}_llamafactory.json", task))
    for rows in (video, text):
        assert len(rows) == len(ref)
        assert [r.text for r in rows] == [r["text"] for r in ref]
        assert [task.canonical(r.label) for r in rows] == [r["label"] for r in ref]
        assert [r.id for r in rows] == [str(r["id"]) for r in ref]
        assert [r.clip.lower() for r in rows] == [r["video"].lower() for r in ref]
    assert [r.clip for r in text] == [r["video"] for r in ref]  # the text variant names the clip as ../shared does


def test_llamafactory_real_files_are_found_and_prefer_the_video_variant(upstream_lf):
    for key, (stem, dim) in SHARED_TASKS.items():
        src = find_source(upstream_lf, get_task(key))
        assert src.layout == "llamafactory"
        assert src.splits == {"validation": upstream_lf / f"{stem}_dev_{dim}_llamafactory.json"}


def test_llamafactory_real_candidate_lists_are_the_registry_order(upstream_lf):
    """The label order of the registry is upstream's: the candidate list of every real prompt."""
    for key, (stem, dim) in SHARED_TASKS.items():
        for variant in ("", "text_"):
            items = json.loads((upstream_lf / f"{stem}_dev_{variant}{dim}_llamafactory.json").read_text("utf-8"))
            prompt = next(t["value"] for t in items[0]["conversations"] if t["from"] == "human")
            listed = prompt.split("are: [", 1)[1].split("]", 1)[0].split(", ")
            assert [x.lower() for x in listed] == list(get_task(key).labels), (key, variant)


# -- LLaMA-Factory: the template, exactly ----------------------------------------------------------------


def upstream_prompt(task, text: str, *, variant: str = "video", capitalise: bool = False, dim: str | None = None):
    """The upstream LLaMA-Factory prompt, as the real files write it (see ../shared/upstream/llamafactory)."""
    labels = ", ".join(lb.capitalize() if capitalise else lb for lb in task.labels)
    if variant == "video":
        d = dim or task.dimension_text
        return (f"<video>You are presented with a video in which the speaker says: {text} Based on the text, video, "
                f"and audio content, what is the {d} of this speaker?\nThe candidate labels for {d} are: [{labels}]. "
                f"Respond in the format: '{d}: [label]'. Only one label should be provided.")  # fmt: skip
    d = dim or task.dimension
    return (f"The speaker says: {text} Based on the text, what is the {d} of this speaker?\nThe candidate labels for "
            f"{d} are: [{labels}]. Respond in the format: '{d}: [label]'.Only one label should be provided.")  # fmt: skip


def _item(i: int, prompt: str, answer: str, clip: str | None = None) -> dict:
    item = {"id": i, "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]}
    if clip:
        item["videos"] = [f"/mnt/somewhere/video/{clip}"]
    return item


TRICKY_TEXTS = [
    "i definitely will buy it",  # no period: upstream adds none
    "well, based on what you said. Based on the text, I'd go",  # "Based on" inside the utterance
    '"Dave." Sounds like a fun guy."',  # quotes at both ends are the utterance's own
    "  two spaces, and a line\r\nbreak ",  # whitespace kept exactly
    "这个神经病",  # Chinese without punctuation
    "İstanbul? Based on",  # a character whose lower() is longer, then the anchor words
]


@pytest.mark.parametrize("variant", ["video", "text"])
def test_llamafactory_recovers_tricky_utterances_exactly(variant, tmp_path):
    task = get_task("mintrec")
    items = [
        _item(i, upstream_prompt(task, t, variant=variant, capitalise=variant == "text"), "intent: Praise")
        for i, t in enumerate(TRICKY_TEXTS)
    ]
    path = tmp_path / f"MIntRec_dev_{'text_' if variant == 'text' else ''}intent_llamafactory.json"
    path.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    rows = _rows(lf.read(path, task))
    assert [r.text for r in rows] == TRICKY_TEXTS
    assert {task.canonical(r.label) for r in rows} == {"praise"}


@pytest.mark.parametrize(
    ("key", "dim", "answer", "label"),
    [("annomi_client", "talk_type", "talk_type: neutral", "neutral"),
     ("annomi_therapist", "therapist_behaviour", "therapist_behaviour: question", "question"),
     ("annomi_therapist", None, "communication behavior: therapist_input", "therapist_input"),
     ("meld_da", None, "dialogue_act: statement-non-opinion", "statement-non-opinion")],
)  # fmt: skip
def test_llamafactory_anno_mi_and_dimension_spellings(key, dim, answer, label, tmp_path):
    task = get_task(key)
    path = tmp_path / f"{task.release_name}_dev_text_{task.dimension}_llamafactory.json"
    path.write_text(json.dumps([_item(0, upstream_prompt(task, "I see.", variant="text", dim=dim), answer)]))
    (row,) = _rows(lf.read(path, task))
    assert row.text == "I see." and task.canonical(row.label) == label


def test_llamafactory_unrecoverable_prompts_are_errors_naming_file_and_item(tmp_path):
    task = get_task("mintrec")
    good = upstream_prompt(task, "fine.")
    bad_prompts = {
        "we are the manager": "does not have the upstream form",  # no template: never the whole turn
        good.replace("Only one label", "Exactly one label"): "does not have the upstream form",  # changed question
        good.replace("[complain, praise", "[complain, cheer"): "are not the 20 labels of task 'mintrec'",
        upstream_prompt(get_task("mintrec2"), "fine."): "are not the 20 labels",  # another task's file
        "The speaker says: fine.": "does not have the upstream form",  # truncated
    }
    items = [_item(0, good, "intent: praise")] + [_item(i + 1, p, "intent: praise") for i, p in enumerate(bad_prompts)]
    path = tmp_path / "MIntRec_dev_intent_llamafactory.json"
    path.write_text(json.dumps(items, indent=1))
    out = list(lf.read(path, task))
    assert isinstance(out[0], RawRow) and out[0].text == "fine."
    for n, (err, expected) in enumerate(zip(out[1:], bad_prompts.values(), strict=True), start=1):
        assert isinstance(err, SourceError) and expected in str(err)
        assert str(err).startswith(f"{path}:") and f"item {n}:" in str(err)
    with pytest.raises(SourceError, match=r"MIntRec_dev_intent_llamafactory.json:\d+: item 1: prompt does not"):
        load_task("mintrec", data=tmp_path, text_only=True, cache_dir=tmp_path / "c")
    ds = load_task(
        "mintrec", data=tmp_path, text_only=True, split="validation", skip_bad=True, cache_dir=tmp_path / "d"
    )
    assert ds["text"] == ["fine."]


def test_llamafactory_labels_and_extractors():
    task = get_task("meld_da")
    assert lf.extract_label("dialogue act: statement-opinion", task) == "statement-opinion"
    assert lf.extract_label("dialogue_act: [backchannel]", task) == "backchannel"
    assert lf.extract_label("Greeting", task) == "Greeting"
    assert lf.extract_label("talk_type: neutral", get_task("annomi_client")) == "neutral"
    with pytest.raises(ValueError, match="upstream form"):
        lf.extract_text("Text: hi there\nWhat is it?", task)


def test_llamafactory_bad_files(tmp_path):
    path = tmp_path / "MIntRec_test_text_intent_llamafactory.json"
    path.write_text('[\n {"id": 0,\n  "conversations": [}\n]')
    with pytest.raises(SourceError, match=r"llamafactory.json:3: invalid JSON"):
        load_task("mintrec", data=tmp_path, text_only=True)
    path.write_bytes(b'[\n{"id": 0, "conversations": []},\n"\xff"]')
    with pytest.raises(SourceError, match=r"llamafactory.json:3: not UTF-8"):
        list(lf.read(path, get_task("mintrec")))
    path.write_bytes(b"")
    with pytest.raises(SourceError, match=r"llamafactory.json: file is empty"):
        list(lf.read(path, get_task("mintrec")))


# -- release TSVs: read literally ------------------------------------------------------------------------

MUSTARD_QUOTES = [  # real MUStARD-style texts: a leading quote must not open a quoted field
    '"Dave." Sounds like a fun guy.',
    "I'm not sure that's \"true\".",
    '"',
    'He said "hi',
    "plain text",
    '""double""',
    "a\u00a0non-breaking space",
    "last one",
]


@pytest.mark.parametrize("header", [("id", "text", "label"), ("id", "utterance", "speaking_style")])
def test_release_tsv_reads_quotes_literally(header, tmp_path):
    task = get_task("mustard")
    folder = tmp_path / "MUStARD"
    folder.mkdir()
    lines = ["\t".join(header)] + [f"{i}\t{t}\t{['sincere', 'sarcastic'][i % 2]}" for i, t in enumerate(MUSTARD_QUOTES)]
    (folder / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = _rows(mmla_release.read(folder / "test.tsv", task))
    assert len(rows) == len(lines) - 1 == len(MUSTARD_QUOTES)  # rows read == data lines
    assert [r.text for r in rows] == MUSTARD_QUOTES
    assert [r.label for r in rows] == [["sincere", "sarcastic"][i % 2] for i in range(len(rows))]
    assert rows[0].clip == "MUStARD_0.mp4" and [r.line for r in rows] == list(range(2, len(lines) + 1))
    ds = load_task("mustard", data=tmp_path, text_only=True, split="test", cache_dir=tmp_path / "c")
    assert ds["text"] == MUSTARD_QUOTES


def test_release_tsv_columns(tmp_path):
    task = get_task("meld")
    path = tmp_path / "test.tsv"
    path.write_text("id\ttext\tlabel\tspeaker\n1\thi\tjoy\tRoss\n", encoding="utf-8")
    (row,) = _rows(mmla_release.read(path, task))
    assert row.extras == {"speaker": "Ross"}
    cases = {
        "id\ttext\tlabel\tsentiment_score\n": r"test.tsv:1: unknown column\(s\) \['sentiment_score'\]",
        "id\ttext\tutterance\tlabel\n": r"test.tsv:1: the header has 2 text columns",
        "id\ttext\tlabel\temotion\n": r"test.tsv:1: the header has 2 label columns",
        "id\ttext\ttext\tlabel\n": r"test.tsv:1: duplicate column",
        "id\tfoo\tlabel\n": r"test.tsv:1: header .* no text column",
        "": r"test.tsv:1: file is empty",
    }
    for header, pattern in cases.items():
        path.write_text(header, encoding="utf-8")
        with pytest.raises(SourceError, match=pattern):
            list(mmla_release.read(path, task))


def test_release_tsv_bad_rows(tmp_path):
    task = get_task("meld")
    path = tmp_path / "test.tsv"
    big = "x" * (1 << 20)  # over csv's field limit: read literally, no limit applies
    path.write_bytes(
        b"id\ttext\tlabel\n1\tok\tjoy\n2\tbad \xff byte\tjoy\n3\tonly two\n4\t\tjoy\n5\t" + big.encode() + b"\tjoy\n"
        b"6\tno label\t \n\n7\tcrlf\tanger\r\n"
    )
    out = list(mmla_release.read(path, task))
    assert [type(r).__name__ for r in out] == ["RawRow", "SourceError", "SourceError", "RawRow", "RawRow",
                                               "SourceError", "RawRow"]  # fmt: skip
    assert "test.tsv:3: not UTF-8" in str(out[1]) and "test.tsv:4: expected 3 tab-separated fields" in str(out[2])
    assert out[3].text == "" and out[4].text == big and out[6].text == "crlf" and out[6].label == "anger"
    assert "test.tsv:7: empty 'label'" in str(out[5])


# -- JSONL / CSV -----------------------------------------------------------------------------------------


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


def test_bad_rows_name_file_and_line(tmp_path):
    good = {"id": 1, "text": "hi", "label": "greet"}
    cases = {
        "not json {": r"test.jsonl:2: invalid JSON",
        json.dumps({"id": 2, "label": "greet"}): r"test.jsonl:2: missing field 'text'",
        json.dumps({"id": 3, "text": "x", "label": "shout"}): r"test.jsonl:2: unknown label 'shout'",
        json.dumps({"id": 4, "text": ["a", "b"], "label": "greet"}): r"test.jsonl:2: 'text' must be a string, got list",
        json.dumps({"id": 5, "text": 3, "label": "greet"}): r"test.jsonl:2: 'text' must be a string, got int",
        json.dumps({"id": [6], "text": "x", "label": "greet"}): r"test.jsonl:2: 'id' must be a string or an integer",
    }
    for bad, pattern in cases.items():
        (tmp_path / "test.jsonl").write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(SourceError, match=pattern):
            load_task("mintrec", data=tmp_path, text_only=True, cache_dir=tmp_path / "cache")
    (tmp_path / "test.jsonl").write_bytes(
        json.dumps(good).encode() + b'\n{"id": 2, "text": "caf\xe9", "label": "greet"}\n'
    )
    with pytest.raises(SourceError, match=r"test.jsonl:2: not UTF-8"):
        load_task("mintrec", data=tmp_path, text_only=True, cache_dir=tmp_path / "cache2")
    ds = load_task("mintrec", data=tmp_path, text_only=True, split="test", skip_bad=True, cache_dir=tmp_path / "c3")
    assert ds["text"] == ["hi"]


def test_csv_stray_quote_and_field_limit_name_the_starting_line(tmp_path):
    big = "y" * 200_000
    (tmp_path / "test.csv").write_text(f'id,text,label\n1,hi,greet\n2,"{big}",greet\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"test.csv:3: field larger than field limit .* starts at line 3"):
        load_task("mintrec", data=tmp_path, text_only=True, cache_dir=tmp_path / "c")
    stray = 'id,text,label\n1,hi,greet\n2,"oops,greet\n' + "".join(f"{i},{'z' * 1000},greet\n" for i in range(3, 200))
    (tmp_path / "test.csv").write_text(stray, encoding="utf-8")
    with pytest.raises(SourceError, match=r"test.csv:3: .*stray double quote"):
        load_task("mintrec", data=tmp_path, text_only=True, cache_dir=tmp_path / "c2")


def test_wrong_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(SourceError, match=r"no data for task 'meld'.*MELD/"):
        load_task("meld", data=tmp_path, text_only=True)
    (tmp_path / "MELD").mkdir()
    (tmp_path / "MELD" / "test.tsv").write_text("id\tfoo\n1\tbar\n")
    with pytest.raises(SourceError, match=r"test.tsv:1: header .* no text column"):
        load_task("meld", data=tmp_path, text_only=True)


# -- videos ----------------------------------------------------------------------------------------------


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


def test_clips_found_by_name_in_nested_folders(sample_release, tmp_path):
    """The Hub archive extracts with its own folders under video/: clips are found by file name, any depth."""
    root = _copy_task(sample_release, "mustard", tmp_path / "rel")
    video = root / "MUStARD" / "video"
    nested = video / "MUStARD_video" / "test"
    nested.mkdir(parents=True)
    for clip in video.glob("MUStARD_test_*.mp4"):
        clip.rename(nested / clip.name.replace("MUStARD_", "mustard_"))  # and any letter case
    ds = load_task("mustard", data=root, split="test", cache_dir=tmp_path / "c")
    assert all(Path(v["path"]).parent == nested for v in ds.with_format("arrow")["video"].to_pylist())


def test_restricted_corpus_requires_videos(sample_release, tmp_path):
    for key in ("mosi", "iemocap", "iemocap_da"):
        task = get_task(key)
        with pytest.raises(FileNotFoundError) as err:
            load_task(key, data=sample_release)
        msg = str(err.value)
        assert task.video.source_url in msg and task.video.license in msg and f"{task.release_name}_" in msg
    with pytest.raises(FileNotFoundError, match=r"MOSI_WKA5OygbEKI\$_\$20\.mp4.*\$_\$"):
        load_task("mosi", data=sample_release)
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


# -- the registry ----------------------------------------------------------------------------------------

SPEC_ORDER = {  # ../shared/SPEC.md, "Labels, in upstream order"
    "mintrec2": "acknowledge, advise, agree, apologise, arrange, ask for help, asking for opinions, care, comfort, "
    "complain, confirm, criticize, doubt, emphasize, explain, flaunt, greet, inform, introduce, invite, joke, leave, "
    "oppose, plan, praise, prevent, refuse, taunt, thank, warn",
    "chsims2": "neutral, positive, negative",
    "annomi_client": "neutral, change, sustain",
    "annomi_therapist": "question, therapist_input, reflection, other",
    "urfunny2": "humorous, serious",
    "mustard": "sincere, sarcastic",
    "mosi": "positive, negative",
    "meld": "neutral, surprise, fear, sadness, joy, anger, disgust",
    "iemocap": "angry, happy, sad, neutral, frustrated, excited",
    "meld_da": "greeting, question, answer, statement-opinion, statement-non-opinion, apology, command, agreement, "
    "disagreement, acknowledge, backchannel, others",
    "mintrec": "complain, praise, apologise, thank, criticize, agree, taunt, flaunt, joke, oppose, comfort, care, "
    "inform, advise, arrange, introduce, leave, prevent, greet, ask for help",
}


def test_label_order_is_upstream():
    SPEC_ORDER["iemocap_da"] = SPEC_ORDER["meld_da"]
    assert set(SPEC_ORDER) == set(TASKS)
    for key, order in SPEC_ORDER.items():
        assert list(TASKS[key].labels) == order.split(", "), key
    assert list(TASKS["mintrec2"].labels) == sorted(TASKS["mintrec2"].labels)
    for alias, canon in {
        "apologize": "apologise",
        "ask for opinions": "asking for opinions",
        "input": "therapist_input",
    }.items():
        task = TASKS["annomi_therapist" if canon == "therapist_input" else "mintrec2"]
        assert task.canonical(alias) == canon


def test_licenses():
    expected = {"mintrec2": "cc-by-nc-sa-4.0", "meld": "gpl-3.0", "mustard": "mit", "urfunny2": "cc-by-nc-nd-4.0",
                "mintrec": "other", "meld_da": "other", "iemocap": "other", "iemocap_da": "other", "mosi": "other",
                "chsims2": "other", "annomi_client": "other", "annomi_therapist": "other"}  # fmt: skip
    for key, task in TASKS.items():
        lic = task.license
        assert isinstance(lic, License) and lic.hub_id == expected[key], key
        assert (lic.name is not None) == (lic.hub_id == "other") and lic.url and lic.url.startswith("http")
        assert lic.terms.endswith(".") and lic.redistribution in ("open", "unclear", "restricted")
        assert (lic.redistribution == "restricted") == (not task.video.redistributable), key
        if lic.name:
            assert lic.name == lic.name.lower() and " " not in lic.name  # a slug, not a sentence
    assert TASKS["annomi_client"].video.redistributable and TASKS["annomi_therapist"].video.redistributable
    assert TASKS["annomi_client"].release_dir == "AnnoMi-client" and TASKS["annomi_client"].clip_prefixes == (
        "AnnoMi-client",
    )
    assert TASKS["mosi"].license is LICENSES["mosi"]
    with pytest.raises(ValueError, match="license_name is required"):
        License("other", None, None, "x.", "open")
    with pytest.raises(ValueError, match="redistribution must be one of"):
        License("mit", None, None, "x.", "maybe")
