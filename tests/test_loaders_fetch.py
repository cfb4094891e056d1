"""License-aware fetching, mocked at the huggingface_hub boundary (no network)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

from mmla.loaders import load_task
from mmla.loaders.fetch import fetch_release
from mmla.loaders.tasks import MMLA_HUB_REPO, get_task


class FakeHub:
    """Serves a local copy of a release as if it were THUIAR/MMLA-Datasets."""

    def __init__(self, release: Path):
        self.release, self.calls, self.corrupt = release, [], set()

    def snapshot_download(self, *, repo_id, repo_type, revision, allow_patterns, local_dir=None, cache_dir=None,
                          token=None):  # fmt: skip
        import fnmatch

        self.calls.append({"repo_id": repo_id, "repo_type": repo_type, "allow_patterns": allow_patterns})
        dest = Path(local_dir)
        for f in self.release.rglob("*"):
            rel = f.relative_to(self.release).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                (dest / rel).write_bytes(b"tampered" if rel in self.corrupt else f.read_bytes())
        return str(dest)

    def list_repo_tree(self, repo_id, path_in_repo=None, *, recursive=False, revision=None, repo_type=None, token=None):
        for f in sorted((self.release / path_in_repo).rglob("*")):
            if f.is_file():
                sha = hashlib.sha256(f.read_bytes()).hexdigest()
                yield SimpleNamespace(path=f.relative_to(self.release).as_posix(), lfs=SimpleNamespace(sha256=sha))


@pytest.fixture
def hub(sample_release, monkeypatch):
    fake = FakeHub(sample_release)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", lambda self, *a, **k: fake.list_repo_tree(*a, **k))
    return fake


def test_fetch_redistributable_only_that_corpus(hub, tmp_path):
    root = fetch_release(get_task("mustard"), tmp_path / "dl")
    assert hub.calls[0]["repo_id"] == MMLA_HUB_REPO and hub.calls[0]["repo_type"] == "dataset"
    assert sorted(p.name for p in root.iterdir()) == ["MUStARD"]
    assert len(list((root / "MUStARD" / "video").glob("*.mp4"))) == 12


def test_fetch_restricted_never_downloads_video(hub, tmp_path, sample_videos_dir):
    shutil.copytree(sample_videos_dir, hub.release / "MOSI" / "video")  # even if the Hub had them
    try:
        root = fetch_release(get_task("mosi"), tmp_path / "dl")
    finally:
        shutil.rmtree(hub.release / "MOSI" / "video")
    assert hub.calls[0]["allow_patterns"] == ["MOSI/*.tsv"] and not (root / "MOSI" / "video").exists()


def test_checksum_mismatch_is_reported_and_removed(hub, tmp_path):
    hub.corrupt.add("MUStARD/video/MUStARD_test_0001.mp4")
    with pytest.raises(RuntimeError, match=r"MUStARD_test_0001\.mp4: sha256 .* does not match"):
        fetch_release(get_task("mustard"), tmp_path / "dl")
    assert not (tmp_path / "dl" / "MUStARD" / "video" / "MUStARD_test_0001.mp4").exists()


def test_load_task_from_hub_release(hub, monkeypatch, tmp_path):
    import mmla.loaders.load as load_mod

    real = load_mod.fetch_release
    monkeypatch.setattr(load_mod, "fetch_release", lambda t, **kw: real(t, tmp_path / "dl", **kw))
    ds = load_task("mustard", data=MMLA_HUB_REPO, split="test", cache_dir=tmp_path / "c")
    assert len(ds) == 4 and "video" in ds.column_names
