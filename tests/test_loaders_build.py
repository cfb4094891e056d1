"""`mmla data build`: every task to a Parquet repo that `datasets.load_dataset` reads offline."""

from __future__ import annotations

import json
import shutil

import datasets
import pyarrow.parquet as pq
import pytest
from conftest import SHARED_DATA, SHARED_UPSTREAM
from huggingface_hub import DatasetCard

from mmla.cli.main import main
from mmla.loaders import load_task, sample_frames
from mmla.loaders.build import build_dataset
from mmla.loaders.files import output_kind
from mmla.loaders.tasks import TASKS

UPSTREAM_LF = SHARED_UPSTREAM / "llamafactory"


@pytest.mark.parametrize("key", list(TASKS))
def test_build_every_task(key, sample_release, sample_videos_dir, tmp_path):
    task = TASKS[key]
    out = tmp_path / key
    videos = None if task.video.redistributable else sample_videos_dir
    stats = build_dataset(key, sample_release, out, videos=videos)
    assert stats["splits"]["test"]["num_rows"] == 2 * len(task.labels)
    assert datasets.get_dataset_config_names(str(out)) == [key]
    dsd = datasets.load_dataset(str(out))  # default config
    assert set(dsd) == {"train", "validation", "test"}
    ds = dsd["test"]
    assert ds.features["label"].names == list(task.labels)
    assert sorted(set(ds["label"])) == list(range(len(task.labels)))
    shard = next((out / key).glob("test-*.parquet"))
    cell = pq.read_table(shard).column("video").to_pylist()[0] if "video" in ds.column_names else None
    if task.video.redistributable:  # clip bytes embedded, relative name only
        assert cell["bytes"] and "/" not in cell["path"]
        frames = sample_frames(ds[0]["video"], num_frames=3, max_pixels=1000)
        assert frames.shape[:2] == (3, 3) and frames.shape[2] * frames.shape[3] <= 1000
    else:  # never embedded: text + clip_id; videos re-attached from the user's folder
        assert "video" not in ds.column_names and ds[0]["clip_id"].startswith(task.release_name)
        back = load_task(key, data=out, videos=sample_videos_dir, split="test")
        assert sample_frames(back[0]["video"], num_frames=2).shape[0] == 2
    # load_task reads the built folder too
    assert load_task(key, data=out, text_only=True, split="validation").num_rows == 2 * len(task.labels)


def test_cli_build_text_only_and_second_config(sample_release, tmp_path, capsys):
    out = tmp_path / "meld"
    assert main(["data", "build", "meld", "--source", str(sample_release), "--text-only", "--out", str(out)]) == 0
    assert main(["data", "build", "meld", "--source", str(sample_release), "--out", str(out)]) == 0
    assert sorted(datasets.get_dataset_config_names(str(out))) == ["meld", "meld_text"]
    assert "video" not in datasets.load_dataset(str(out), "meld_text", split="train").column_names
    assert "video" in datasets.load_dataset(str(out), "meld", split="train").column_names
    assert not list(tmp_path.glob(".meld.*"))  # no temp folders left behind


def test_cli_skip_bad_writes_report(sample_release, tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(sample_release / "MELD", src / "MELD")
    tsv = src / "MELD" / "train.tsv"
    tsv.write_text(tsv.read_text() + "zz1\tthis label is wrong\tbored\tA\nzz2\tonly two fields\n")
    next((src / "MELD" / "video").glob("MELD_test_*.mp4")).write_bytes(b"junk")
    out = tmp_path / "out"
    assert main(["data", "build", "meld", "--source", str(src), "--out", str(out)]) == 1
    assert "unknown label 'bored'" in capsys.readouterr().err and not out.exists()
    assert main(["data", "build", "meld", "--source", str(src), "--skip-bad", "--out", str(out)]) == 0
    report = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    reasons = " ".join(r["reason"] for r in report)
    assert len(report) == 3 and "bored" in reasons and "tab-separated" in reasons and "cannot decode" in reasons
    assert datasets.load_dataset(str(out), split="train").num_rows == 14


def test_cli_sample_and_info(tmp_path, capsys):
    assert main(["data", "sample", "--out", str(tmp_path), "--tasks", "mustard,mosi"]) == 0
    assert (tmp_path / "MMLA-Datasets" / "MUStARD" / "dev.tsv").is_file()
    assert len(list((tmp_path / "manual_videos").glob("MOSI_*.mp4"))) == 12
    capsys.readouterr()
    assert main(["data", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [r["task"] for r in info] == list(TASKS)


# -- real upstream files, built exactly -------------------------------------------------------------------

REAL = {"mintrec": 445, "meld": 1109, "iemocap": 521, "mosi": 229, "mustard": 138}


@pytest.mark.parametrize("key", list(REAL))
def test_build_real_upstream_files_equals_shared_data(key, tmp_path, capsys):
    """`mmla data build <task> --source ../shared/upstream/llamafactory --text-only` == ../shared/data, row for row."""
    if not (UPSTREAM_LF / "MIntRec_dev_intent_llamafactory.json").is_file() or not SHARED_DATA.is_dir():
        pytest.skip("../shared/upstream or ../shared/data not available")
    out = tmp_path / key
    assert main(["data", "build", key, "--source", str(UPSTREAM_LF), "--text-only", "--out", str(out)]) == 0
    assert f"{key}_text/validation: {REAL[key]} rows" in capsys.readouterr().out
    ds = datasets.load_dataset(str(out), f"{key}_text", split="validation")
    ref = [json.loads(x) for x in (SHARED_DATA / key / "validation.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(ds) == len(ref) == REAL[key]  # iemocap: the upstream dev file has 521 rows (the paper says 528)
    assert ds["text"] == [r["text"] for r in ref]
    assert [ds.features["label"].int2str(i) for i in ds["label"]] == [r["label"] for r in ref]
    assert ds["id"] == [str(r["id"]) for r in ref]
    assert [c.lower() for c in ds["clip_id"]] == [r["video"].lower() for r in ref]


# -- output folders ---------------------------------------------------------------------------------------


def test_rebuild_needs_overwrite_and_keeps_other_configs_without_copying(sample_release, tmp_path, capsys):
    out = tmp_path / "meld"
    args = ["data", "build", "meld", "--source", str(sample_release), "--out", str(out)]
    assert main([*args, "--text-only"]) == 0
    assert output_kind(out) == "mmla data build"
    assert main(args) == 0  # another config: added to the earlier build
    shard = next((out / "meld_text").glob("train-*.parquet"))
    inode = shard.stat().st_ino
    capsys.readouterr()
    assert main(args) == 1  # the same config again: refused without --overwrite
    assert "Pass --overwrite to replace it" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert sorted(datasets.get_dataset_config_names(str(out))) == ["meld", "meld_text"]
    kept = next((out / "meld_text").glob("train-*.parquet"))
    assert kept.stat().st_ino == inode  # the other config was linked into the new build, not re-copied
    assert output_kind(out) == "mmla data build" and not list(tmp_path.glob(".meld.*"))


def test_card_and_info_carry_the_license(sample_release, tmp_path, capsys):
    out = tmp_path / "mintrec"
    build_dataset("mintrec", sample_release, out, text_only=True)
    card = DatasetCard.load(out / "README.md").data.to_dict()
    assert card["license"] == "other" and card["license_name"] == "mintrec-research"
    assert card["license_link"] == TASKS["mintrec"].license.url
    out2 = tmp_path / "mustard"
    build_dataset("mustard", sample_release, out2, text_only=True)
    card = DatasetCard.load(out2 / "README.md").data.to_dict()
    assert card["license"] == "mit" and "license_name" not in card
    capsys.readouterr()
    assert main(["data", "info"]) == 0
    text = capsys.readouterr().out
    assert "cc-by-nc-sa-4.0" in text and "other (iemocap-release-form)" in text and "gpl-3.0" in text
    assert main(["data", "info", "--json", "--tasks", "annomi_client"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["license"] == "other" and row["license_name"] == "anno-mi" and row["video_redistributable"] is True
    assert row["labels"] == ["neutral", "change", "sustain"]
