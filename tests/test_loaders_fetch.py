"""Fetching from the Hub release as it really is laid out, against a local fake Hub (real huggingface_hub client).

The fake Hub serves the Hub layout that ``mmla data sample`` writes: ``<corpus>/{train,dev,test}.tsv`` with
``id, text, label`` and, for redistributable corpora, ONE irregularly named archive with nested folders
(``MIntRec/MIntRec_video.tar.gz`` -> ``MIntRec_video/<split>/MIntRec_<id>.mp4``); no ``video/`` folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import zipfile
from pathlib import Path

import huggingface_hub
import pytest
from fake_hub import FakeHub, serve_as_hub
from huggingface_hub import constants as hf_constants

from mmla.cli.main import main
from mmla.loaders.fetch import (
    EXTRACTED_MARKER,
    MMLA_HUB_REVISION,
    ArchiveError,
    FetchError,
    extract_archives,
    fetch_corpus,
)
from mmla.loaders.files import MARKER_NAME, OutputDirError, output_kind
from mmla.loaders.sample import HUB_DIRNAME, RELEASE_DIRNAME, write_sample_release
from mmla.loaders.tasks import MMLA_HUB_REPO, get_task

ARCHIVE = "MIntRec/MIntRec_video.tar.gz"


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hub-sample")
    write_sample_release(out, tasks="mintrec,mosi,mustard", per_class=1, seed=1)
    return out


@pytest.fixture
def hub(sample_out: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    with serve_as_hub(monkeypatch, tmp_path) as fake:
        fake.add_repo_from_folder(MMLA_HUB_REPO, sample_out / HUB_DIRNAME)
        yield fake


def _ids(tsv: Path) -> list[str]:
    lines = tsv.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\ttext\tlabel"
    return [line.split("\t")[0] for line in lines[1:]]


def _downloads(hub: FakeHub, name: str) -> list:
    return [r for r in hub.calls("GET", "/resolve/") if r.path.endswith(name)]


def _no_temps(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp-" in p.name or p.name.endswith(".incomplete")]


def test_hub_layout_is_the_real_one(hub: FakeHub) -> None:
    files = hub.files(MMLA_HUB_REPO, "dataset")
    assert {p for p in files if p.startswith("MIntRec/")} == {
        "MIntRec/train.tsv", "MIntRec/dev.tsv", "MIntRec/test.tsv", ARCHIVE,
    }  # fmt: skip
    assert not any("/video/" in p for p in files) and not any(p.startswith("MOSI/") and "tar" in p for p in files)
    with tarfile.open(fileobj=io.BytesIO(files[ARCHIVE])) as tf:
        names = tf.getnames()
    assert "MIntRec_video/train/MIntRec_train_0000.mp4" in names  # nested folders, as the real archives


def test_text_only_downloads_only_the_tsvs(hub: FakeHub, tmp_path: Path) -> None:
    res = fetch_corpus(get_task("mintrec"), tmp_path / "dl", text_only=True)
    assert [p.name for p in res.tsvs] == ["train.tsv", "dev.tsv", "test.tsv"]
    for p in res.tsvs:
        assert p.read_bytes() == hub.files(MMLA_HUB_REPO, "dataset")[f"MIntRec/{p.name}"]
    assert res.revision == hub.repos[("dataset", MMLA_HUB_REPO)].shas["main"] and res.video_dir is None
    assert not _downloads(hub, "MIntRec_video.tar.gz") and not (res.folder / "video").exists()
    assert output_kind(tmp_path / "dl") == "mmla data fetch"
    assert not [r for r in hub.calls("GET", "/resolve/") if "MOSI" in r.path or "MUStARD" in r.path]


def test_videos_found_by_name_wherever_the_archive_puts_them(hub: FakeHub, sample_out: Path, tmp_path: Path) -> None:
    task = get_task("mintrec")
    res = fetch_corpus(task, tmp_path / "dl")
    assert res.archives == [ARCHIVE] and res.video_dir == tmp_path / "dl" / "MIntRec" / "video"
    ids = [i for tsv in res.tsvs for i in _ids(tsv)]
    clips = {p.name: p for p in res.video_dir.rglob("*.mp4")}
    assert set(clips) == {f"MIntRec_{i}.mp4" for i in ids} and res.clips == len(ids) == len(clips)
    assert all(len(p.relative_to(res.video_dir).parts) == 3 for p in clips.values())  # archive's folders kept
    upstream = sample_out / RELEASE_DIRNAME / "MIntRec" / "video"
    assert all(p.read_bytes() == (upstream / name).read_bytes() for name, p in clips.items())
    marker = json.loads((res.video_dir / EXTRACTED_MARKER).read_text())
    sha = hashlib.sha256(hub.files(MMLA_HUB_REPO, "dataset")[ARCHIVE]).hexdigest()
    assert marker["archives"] == [{"path": ARCHIVE, "sha256": sha, "size": marker["archives"][0]["size"]}]
    assert marker["revision"] == res.revision and marker["files"] == len(ids)
    assert not (tmp_path / "dl" / ARCHIVE).exists() and _no_temps(tmp_path / "dl")  # archive removed once extracted
    # a re-run neither downloads nor extracts again
    again = fetch_corpus(task, tmp_path / "dl")
    assert again.skipped_extraction and again.clips == len(ids) and len(_downloads(hub, "MIntRec_video.tar.gz")) == 1


def test_resume_after_a_dropped_connection_and_after_a_failed_run(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    task = get_task("mintrec")
    # 1) the connection drops half-way: huggingface_hub resumes with a Range request in the same run, from the
    #    last whole chunk it wrote (10 MB on the real Hub; 4 KiB here, so that a small archive shows it)
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    cut = len(hub.files(MMLA_HUB_REPO, "dataset")[ARCHIVE]) // 2 // 4096 * 4096
    hub.fail_downloads[ARCHIVE] = [cut + 100]
    res = fetch_corpus(task, tmp_path / "a")
    gets = _downloads(hub, "MIntRec_video.tar.gz")
    assert cut > 0 and [r.range for r in gets] == [None, f"bytes={cut}-"] and res.clips > 0
    # 2) the archive download fails outright: one-line error, no half-extracted folder; the re-run
    #    keeps the TSVs it already has (not downloaded again) and completes
    hub.requests.clear()
    hub.fail_downloads[ARCHIVE] = [-1]
    with pytest.raises(FetchError, match=r"downloading THUIAR/MMLA-Datasets/MIntRec/MIntRec_video\.tar\.gz@") as ei:
        fetch_corpus(task, tmp_path / "b")
    assert "\n" not in str(ei.value) and "run again to resume" in str(ei.value)
    assert not (tmp_path / "b" / "MIntRec" / "video").exists() and _no_temps(tmp_path / "b")
    assert (tmp_path / "b" / "MIntRec" / "train.tsv").is_file()
    hub.requests.clear()
    res = fetch_corpus(task, tmp_path / "b")
    assert res.clips > 0 and not _downloads(hub, "train.tsv")


def _tamper(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """The Hub lists another checksum than the bytes that arrive (a corrupted transfer or mirror)."""
    real = huggingface_hub.HfApi.list_repo_tree

    def listing(self, *args, **kwargs):
        for entry in real(self, *args, **kwargs):
            if entry.path == path:
                if entry.lfs is not None:
                    entry.lfs = type(entry.lfs)(size=entry.lfs.size, sha256="0" * 64, pointer_size=1)
                else:
                    entry.blob_id = "0" * 40
            yield entry

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", listing)


@pytest.mark.parametrize("path", [ARCHIVE, "MIntRec/dev.tsv"])
def test_checksum_mismatch_removes_the_file(hub: FakeHub, monkeypatch, tmp_path: Path, path: str) -> None:
    _tamper(monkeypatch, path)
    local = tmp_path / "dl" / path
    with pytest.raises(
        FetchError, match=rf"{re.escape(str(local))}: (sha256|git sha1) [0-9a-f]+ does not match the Hub's 0+ "
    ) as ei:
        fetch_corpus(get_task("mintrec"), tmp_path / "dl")
    assert "\n" not in str(ei.value) and "removed" in str(ei.value)
    assert not local.exists() and not (tmp_path / "dl" / "MIntRec" / "video").exists()


def test_truncated_archive_names_it_and_leaves_nothing_half_extracted(hub: FakeHub, tmp_path: Path) -> None:
    files = hub.files(MMLA_HUB_REPO, "dataset")
    good = files[ARCHIVE]
    files[ARCHIVE] = good[: len(good) // 2]  # the file itself is broken (its listed sha256 is of these bytes)
    with pytest.raises(ArchiveError, match=r"MIntRec_video\.tar\.gz: cannot be extracted, it is truncated or corrupt"):
        fetch_corpus(get_task("mintrec"), tmp_path / "dl")
    corpus = tmp_path / "dl" / "MIntRec"
    assert not (corpus / "video").exists() and _no_temps(corpus)
    files[ARCHIVE] = good  # fixed upstream (a new commit): the re-run redoes it
    hub.repos[("dataset", MMLA_HUB_REPO)].shas["main"] = "f" * 40
    assert fetch_corpus(get_task("mintrec"), tmp_path / "dl").clips > 0


def _tar(path: Path, build) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("clips/MIntRec_ok.mp4")
        ok.size = 3
        tf.addfile(ok, io.BytesIO(b"mp4"))
        build(tf)
    return path


def _file(name: str, data: bytes = b"evil") -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _dev(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


UNSAFE_TARS = {
    "dotdot": (lambda tf: tf.addfile(*_file("../evil")), r"member '\.\./evil' points outside"),
    "nested dotdot": (lambda tf: tf.addfile(*_file("clips/../../evil")), r"points outside"),
    "absolute": (lambda tf: tf.addfile(*_file("/tmp/mmla-evil-abs")), r"absolute path"),
    "symlink to /etc/passwd": (lambda tf: tf.addfile(_link("clips/passwd", "/etc/passwd")), r"links to the absolute"),
    "relative symlink out": (lambda tf: tf.addfile(_link("clips/up", "../../..")), r"links to '\.\./\.\./\.\.'"),
    "hardlink to /etc/passwd": (
        lambda tf: tf.addfile(_link("clips/hard", "/etc/passwd", tarfile.LNKTYPE)),
        r"links to the absolute",
    ),
    "link through an inner link": (  # clips/up -> .. is inside, but clips/up/../evil is not
        lambda tf: (tf.addfile(_link("clips/up", "..")), tf.addfile(_link("clips/up/out", "../evil"))),
        r"member 'clips/up/out' links to '\.\./evil', outside",
    ),
    "device file": (lambda tf: tf.addfile(_dev("clips/null")), r"device or special file"),
}


@pytest.mark.parametrize("case", list(UNSAFE_TARS))
def test_unsafe_tar_members_are_rejected(tmp_path: Path, case: str) -> None:
    build, message = UNSAFE_TARS[case]
    box = tmp_path / "box"
    box.mkdir()
    archive = _tar(box / "evil.tar.gz", build)
    target = box / "corpus" / "video"
    with pytest.raises(ArchiveError, match=rf"evil\.tar\.gz: .*{message}.*nothing was extracted") as ei:
        extract_archives([archive], target)
    assert "\n" not in str(ei.value)
    assert not target.exists() and _no_temps(box) and sorted(box.iterdir()) == [box / "corpus", archive]
    assert not list((box / "corpus").iterdir()) and not Path("/tmp/mmla-evil-abs").exists()
    assert not [p for p in tmp_path.rglob("*") if "evil" in p.name and p != archive]


def test_internal_links_are_kept(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "ok.tar.gz", lambda tf: tf.addfile(_link("clips/alias.mp4", "MIntRec_ok.mp4")))
    assert extract_archives([archive], tmp_path / "video") == 1
    assert (tmp_path / "video" / "clips" / "alias.mp4").read_bytes() == b"mp4"


def _zip(path: Path, name: str, *, symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("clips/MIntRec_ok.mp4", b"mp4")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (0o120777 << 16) | 0x20
        zf.writestr(info, b"/etc/passwd" if symlink else b"evil")
    return path


@pytest.mark.parametrize(
    ("name", "symlink", "message"),
    [("../evil", False, "points outside"), ("/tmp/mmla-evil-zip", False, "absolute path"),
     ("C:/evil", False, "absolute path"), ("clips/passwd", True, "symbolic link")],
)  # fmt: skip
def test_unsafe_zip_members_are_rejected(tmp_path: Path, name: str, symlink: bool, message: str) -> None:
    archive = _zip(tmp_path / "evil.zip", name, symlink=symlink)
    with pytest.raises(ArchiveError, match=rf"evil\.zip: member .*{message}"):
        extract_archives([archive], tmp_path / "video")
    assert not (tmp_path / "video").exists() and _no_temps(tmp_path) and not (tmp_path.parent / "evil").exists()


def test_zip_and_truncated_zip(tmp_path: Path) -> None:
    good = _zip(tmp_path / "ok.zip", "clips/sub/MIntRec_b.mp4")
    assert extract_archives([good], tmp_path / "video") == 2
    assert (tmp_path / "video" / "clips" / "sub" / "MIntRec_b.mp4").read_bytes() == b"evil"
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(ArchiveError, match=r"cut\.zip: cannot be extracted, it is truncated or corrupt"):
        extract_archives([cut], tmp_path / "video2")
    assert not (tmp_path / "video2").exists()


def test_unsafe_archive_on_the_hub_writes_nothing_outside(hub: FakeHub, tmp_path: Path) -> None:
    evil = _tar(tmp_path / "x.tar.gz", lambda tf: tf.addfile(*_file("../../evil.mp4")))
    hub.files(MMLA_HUB_REPO, "dataset")[ARCHIVE] = evil.read_bytes()
    with pytest.raises(ArchiveError, match=r"MIntRec_video\.tar\.gz: member '\.\./\.\./evil\.mp4' points outside"):
        fetch_corpus(get_task("mintrec"), tmp_path / "dl")
    assert not list(tmp_path.rglob("evil.mp4")) and not (tmp_path / "dl" / "MIntRec" / "video").exists()


def test_restricted_corpus_never_requests_an_archive(hub: FakeHub, tmp_path: Path) -> None:
    # even if the Hub had one in the folder
    hub.files(MMLA_HUB_REPO, "dataset")["MOSI/MOSI_video.tar.gz"] = hub.files(MMLA_HUB_REPO, "dataset")[ARCHIVE]
    res = fetch_corpus(get_task("mosi"), tmp_path / "dl")
    assert [p.name for p in res.tsvs] == ["train.tsv", "dev.tsv", "test.tsv"] and res.video_dir is None
    assert not _downloads(hub, "MOSI_video.tar.gz") and not (res.folder / "video").exists()


def test_revision_is_resolved_pinned_and_checked(hub: FakeHub, tmp_path: Path) -> None:
    assert (os.environ.get("MMLA_HUB_REVISION") or "main") == MMLA_HUB_REVISION
    sha = hub.repos[("dataset", MMLA_HUB_REPO)].shas["main"]
    res = fetch_corpus(get_task("mustard"), tmp_path / "dl", text_only=True, revision=sha)
    assert res.revision == sha
    assert all(f"/resolve/{sha}/" in r.path for r in hub.calls("GET", "/resolve/"))  # every file at that commit
    with pytest.raises(ValueError, match=r"THUIAR/MMLA-Datasets has no revision 'nope'"):
        fetch_corpus(get_task("mustard"), tmp_path / "dl", revision="nope")


def test_out_folder_is_claimed(hub: FakeHub, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(OutputDirError, match="not written by mmla"):
        fetch_corpus(get_task("mintrec"), mine, text_only=True)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and not hub.calls("GET", "/resolve/")


def test_cli_fetch(hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dl"
    assert main(["data", "fetch", "mintrec", "--out", str(out)]) == 0  # text only by default
    assert not (out / "MIntRec" / "video").exists() and (out / "MIntRec" / "test.tsv").is_file()
    assert main(["data", "fetch", "mintrec,mosi", "--videos", "--out", str(out)]) == 0
    text = capsys.readouterr()
    assert "mintrec:" in text.out and "clips in" in text.out and "revision" in text.out
    assert "MOSI videos are not redistributed" in text.err and (out / "MOSI" / "dev.tsv").is_file()
    assert not _downloads(hub, "MOSI_video.tar.gz")
    (out / MARKER_NAME).unlink()
    assert main(["data", "fetch", "mintrec", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mmla data: error: --out ") and err.count("\n") == 1 and "Traceback" not in err


def test_load_task_from_the_hub_id(hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mmla.loaders import load_task

    monkeypatch.setenv("MMLA_FETCH_DIR", str(tmp_path / "fetched"))
    ds = load_task("mintrec", data=MMLA_HUB_REPO, split="test", cache_dir=tmp_path / "c")
    ids = _ids(tmp_path / "fetched" / "MIntRec" / "test.tsv")
    assert ds["id"] == ids and "video" in ds.column_names
    assert all(
        Path(v["path"]).name == f"MIntRec_{i}.mp4"
        for v, i in zip(ds.cast_column("video", _plain())["video"], ids, strict=True)
    )


def _plain():
    import datasets

    return datasets.Video(decode=False)
