"""The dataset card is written in one place: build records its YAML and statistics, the card reads that record."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from hub_testdata import build_dataset_folder
from huggingface_hub import DatasetCard

from mmla.cli.main import main
from mmla.hub_cards.dataset_card import BUILD_METADATA, dataset_card, scan_built_dataset, write_dataset_card
from mmla.loaders.build import BUILD_INFO, PER_CORPUS_LICENSE, build_dataset, read_build
from mmla.loaders.files import MARKER_NAME
from mmla.loaders.tasks import TASKS, get_task


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line ``mmla`` prints for a user error (exit 1, no traceback)."""
    capsys.readouterr()  # progress bars of the fixtures
    assert main(list(args)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith(f"mmla {args[0]}")
    return err


@pytest.fixture(scope="module")
def two_builds(sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real build: MOSI (text only) first, then MUStARD with clips added to the same folder."""
    out = tmp_path_factory.mktemp("two") / "out"
    build_dataset("mosi", sample_release, out, text_only=True)
    build_dataset("mustard", sample_release, out)
    return out


def test_build_records_its_yaml_and_the_card_keeps_it(two_builds: Path) -> None:
    meta, stats = read_build(two_builds)
    assert DatasetCard.load(two_builds / "README.md").data.to_dict() == meta  # the README is that YAML
    # registry order; the config built first stays the default; licenses of both corpora
    assert [c["config_name"] for c in meta["configs"]] == ["mosi_text", "mustard"]
    assert [c["config_name"] for c in meta["configs"] if c.get("default")] == ["mosi_text"]
    assert meta["license"] == ["other", "mit"] and meta["license_name"] == get_task("mosi").license.name
    assert stats["mustard"]["layout"] == "mmla_release" and stats["mustard"]["video_embedded"] is True
    n = 2 * get_task("mustard").num_labels
    assert stats["mustard"]["splits"]["test"]["num_videos"] == n == stats["mustard"]["splits"]["test"]["num_rows"]
    assert stats["mosi_text"]["splits"]["train"]["labels"] == {"positive": 2, "negative": 2}
    card = dataset_card(scan_built_dataset(two_builds))
    data = card.data.to_dict()
    assert {k: data[k] for k in BUILD_METADATA if k in data} == meta
    assert data["task_ids"] == ["multi-class-classification", "sentiment-classification"]
    assert "- **Built from:** a `mmla_release` source" in card.text
    assert f"({3 * n} of {3 * n} rows have their clip embedded)" in card.text
    assert datasets.get_dataset_config_names(str(two_builds)) == ["mosi_text", "mustard"]
    assert datasets.load_dataset(str(two_builds), split="test")["task"][0] == "mosi"  # the default config


def test_card_reads_no_shard(tmp_path: Path) -> None:
    folder = build_dataset_folder(tmp_path, {"mintrec": True, "mosi": False})
    before = write_dataset_card(folder, out=tmp_path / "a.md").read_text()
    for shard in folder.rglob("*.parquet"):
        shard.write_bytes(b"not parquet")  # the card must not need them
    (folder / "README.md").write_text("# replaced by hand")  # nor the README: the record is build's
    assert write_dataset_card(folder, out=tmp_path / "b.md").read_text() == before
    assert "| 1 | negative | 2 | 1 | 1 |" in before and "6 of 9 rows have their clip embedded" in before


def test_task_ids_are_registry_data(tmp_path: Path) -> None:
    keys = ["mintrec", "meld", "mosi"]
    card = dataset_card(scan_built_dataset(build_dataset_folder(tmp_path, dict.fromkeys(keys, False))))
    assert card.data.task_ids == list(dict.fromkeys(i for k in keys for i in TASKS[k].hub_task_ids))
    assert card.data.task_ids == ["multi-class-classification", "intent-classification", "sentiment-classification"]
    by_dimension = {t.dimension: set() for t in TASKS.values()}
    for t in TASKS.values():
        by_dimension[t.dimension].add(t.hub_task_ids)
    assert all(len(ids) == 1 for ids in by_dimension.values())  # one dimension, one set of Hub ids


def test_per_corpus_license_name_for_several_custom_terms(tmp_path: Path) -> None:
    folder = build_dataset_folder(tmp_path, {"mintrec": False, "mosi": False})
    meta, _ = read_build(folder)
    assert (meta["license"], meta["license_name"], meta["license_link"]) == ("other", PER_CORPUS_LICENSE, "README.md")


# -- bad input -------------------------------------------------------------------------------------------


def test_card_refuses_folders_build_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = build_dataset_folder(tmp_path / "b", {"mosi": False})
    stray = folder / "mosi" / "test-extra.parquet"  # would be loaded by the `mosi/test-*` glob
    stray.write_bytes(b"x")
    err = _error(capsys, "card", "dataset", str(folder))
    assert "test-extra.parquet: not a shard of this build" in err
    stray.unlink()
    (folder / "mosi" / "train-00000-of-00001.parquet").unlink()
    assert "mosi/train-00000-of-00001.parquet is listed in .mmla-build.json but missing" in _error(
        capsys, "card", "dataset", str(folder)
    )
    (folder / BUILD_INFO).write_text('{"format": 1,\n "configs": }')
    assert f"{BUILD_INFO}:2:13: not valid JSON" in _error(capsys, "card", "dataset", str(folder))
    (folder / BUILD_INFO).write_text(json.dumps({"format": 1, "configs": {}}))
    assert "no 'metadata' and 'configs' objects" in _error(capsys, "card", "dataset", str(folder))
    (folder / BUILD_INFO).unlink()
    assert f"no {BUILD_INFO}" in _error(capsys, "card", "dataset", str(folder))


def test_build_refuses_to_add_to_an_older_build(
    sample_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    build_dataset("mosi", sample_release, out, text_only=True)
    (out / BUILD_INFO).unlink()  # what a build of an earlier version left
    args = ["data", "build", "meld", "--source", str(sample_release), "--text-only", "--out", str(out)]
    assert "built by an older mmla (no .mmla-build.json)" in _error(capsys, *args)
    assert (out / "mosi_text").is_dir() and (out / MARKER_NAME).is_file()  # nothing touched
