"""`mmla data build`: every task to a Parquet repo that `datasets.load_dataset` reads offline."""

from __future__ import annotations

import json
import shutil

import datasets
import pyarrow.parquet as pq
import pytest

from mmla.eval.cli import main
from mmla.loaders import load_task, sample_frames
from mmla.loaders.build import build_dataset
from mmla.loaders.tasks import TASKS


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
