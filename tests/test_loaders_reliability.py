"""Bad input to `mmla data build` / `load_task` (issue 10): nothing lost, nothing leaked, one-line errors.

Data-loss cases assert that the files survive byte for byte; security cases assert the error and that no
foreign bytes reach the output; error cases assert the one-line message and that no traceback is printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from conftest import faststart_copy

from mmla.cli.main import main
from mmla.loaders import load_task
from mmla.loaders.build import build_dataset
from mmla.loaders.files import MARKER_NAME, output_kind
from mmla.loaders.sample import CLIP_SPECS, write_clip

MMLA = Path(sys.executable).with_name("mmla")


def _tree(root: Path) -> dict[str, str]:
    """Every file under root -> sha256: what must survive a refused command unchanged."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _build(capsys, *args: str) -> tuple[int, str]:
    code = main(["data", "build", *args])
    err = capsys.readouterr().err
    return code, err


def _one_line_error(err: str, *needles: str) -> str:
    """The `mmla data build: error: ...` line; there is exactly one, and no traceback."""
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if ": error: " in x]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def mustard_src(sample_release: Path, tmp_path: Path) -> Path:
    """A private copy of the sample MUStARD release (root with MUStARD/{train,dev,test}.tsv and video/)."""
    root = tmp_path / "rel"
    shutil.copytree(sample_release / "MUStARD", root / "MUStARD")
    return root


def _jsonl_corpus(folder: Path, rows: list[dict], split: str = "test") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


# -- data loss --------------------------------------------------------------------------------------------


def test_out_with_user_files_is_refused_and_kept(mustard_src, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / "sub").mkdir()
    (out / "sub" / "data.bin").write_bytes(os.urandom(100))
    before = _tree(out)
    for extra in ([], ["--overwrite"]):  # --overwrite never replaces files mmla did not write
        code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--text-only", "--out", str(out), *extra)
        assert code == 1
        _one_line_error(err, str(out), "not written by mmla")
        assert _tree(out) == before


def test_out_equal_to_source_or_its_parent_is_refused(mustard_src, tmp_path, capsys):
    before = _tree(tmp_path)
    cases = {  # --out -> what the one line says
        mustard_src: "is the input",
        tmp_path: "contains the input",
        mustard_src / "MUStARD": "not written by mmla",  # inside the source: a folder of files, never replaced
        mustard_src / "MUStARD" / "video": "not written by mmla",
    }
    for out, expected in cases.items():
        for extra in ([], ["--overwrite"]):
            code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--out", str(out), *extra)
            assert code == 1
            _one_line_error(err, expected)
    assert _tree(tmp_path) == before


def test_out_containing_the_videos_folder_is_refused(sample_release, sample_videos_dir, capsys):
    before = _tree(sample_videos_dir)
    code, err = _build(capsys, "mosi", "--source", str(sample_release), "--videos", str(sample_videos_dir),
                       "--out", str(sample_videos_dir.parent))  # fmt: skip
    assert code == 1
    _one_line_error(err, "contains the input")
    assert _tree(sample_videos_dir) == before
    code, err = _build(capsys, "mosi", "--source", str(sample_release), "--videos", str(sample_videos_dir),
                       "--out", str(sample_videos_dir), "--overwrite")  # fmt: skip
    assert code == 1
    _one_line_error(err, f"is the input {sample_videos_dir}")
    assert _tree(sample_videos_dir) == before


def test_out_dot_is_refused_in_a_project(mustard_src, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("my project")
    (project / "src").mkdir()
    (project / "src" / "main.py").write_text("print('hi')")
    before = _tree(project)
    monkeypatch.chdir(project)
    code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--text-only", "--out", ".")
    assert code == 1
    _one_line_error(err, "--out .", "not empty")
    assert _tree(project) == before


def test_out_that_is_a_file_or_unwritable(mustard_src, tmp_path, monkeypatch, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--text-only", "--out", str(afile))
    assert code == 1 and afile.read_text() == "keep me"
    _one_line_error(err, "is a file")
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro else real_access(p, mode, **kw))
    code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--text-only", "--out", str(ro / "out"))
    assert code == 1
    _one_line_error(err, "not writable")
    assert list(ro.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_for_real(mustard_src, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--text-only", "--out", str(ro / "o"))
        assert code == 1
        _one_line_error(err, "not writable")
    finally:
        ro.chmod(0o755)


def test_failed_rebuild_keeps_the_earlier_build_and_cleans_stale_temps(mustard_src, tmp_path, capsys):
    out = tmp_path / "built"
    assert main(["data", "build", "mustard", "--source", str(mustard_src), "--text-only", "--out", str(out)]) == 0
    assert (out / MARKER_NAME).is_file() and output_kind(out) == "mmla data build"
    before = _tree(out)
    stale, fresh = tmp_path / ".built.tmp-killed", tmp_path / ".built.tmp-running"
    for d in (stale, fresh):
        d.mkdir()
        (d / "half.parquet").write_bytes(b"x")
    old = time.time() - 3 * 24 * 3600
    os.utime(stale, (old, old))
    tsv = mustard_src / "MUStARD" / "train.tsv"
    tsv.write_text(tsv.read_text() + "zz\tbad label\tmaybe\tA\n")
    code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--text-only", "--out", str(out), "--overwrite")
    assert code == 1
    _one_line_error(err, "train.tsv:", "unknown label 'maybe'")
    assert _tree(out) == before  # the earlier build is untouched
    assert not stale.exists() and fresh.exists()  # a killed run's leftovers go; a recent one may be running
    assert sorted(p.name for p in tmp_path.glob(".built.*")) == [fresh.name]


# -- duplicate ids ----------------------------------------------------------------------------------------


def test_duplicate_ids_are_rejected_naming_both_lines(tmp_path, capsys):
    folder = tmp_path / "src" / "MUStARD"
    folder.mkdir(parents=True)
    rows = [f"{i % 5}\tutterance {i}\t{['sincere', 'sarcastic'][i % 2]}" for i in range(10)]  # ids 5-9 repeat 0-4
    (folder / "test.tsv").write_text("id\ttext\tlabel\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    code, err = _build(capsys, "mustard", "--source", str(folder.parent), "--text-only", "--out", str(out))
    assert code == 1 and not out.exists()
    _one_line_error(err, "test.tsv:7: duplicate id '0' in split 'test' (first at line 2)")
    assert main(["data", "build", "mustard", "--source", str(folder.parent), "--text-only", "--skip-bad",
                 "--out", str(out)]) == 0  # fmt: skip
    ds = datasets.load_dataset(str(out), "mustard_text", split="test")
    assert ds["id"] == ["0", "1", "2", "3", "4"] and ds["text"] == [f"utterance {i}" for i in range(5)]
    report = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    assert [r["line"] for r in report] == [7, 8, 9, 10, 11] and all("duplicate id" in r["reason"] for r in report)


# -- video paths confined -----------------------------------------------------------------------------------


@pytest.fixture
def foreign_clip(tmp_path: Path) -> Path:
    """A decodable clip of a restricted corpus outside the release, with bytes no other clip has."""
    return write_clip(tmp_path / "manual_videos" / "MOSI_secret_0001.mp4", CLIP_SPECS[0], seed=4242)


def _assert_not_embedded(out: Path, clip: Path) -> None:
    data = clip.read_bytes()
    probe = data[len(data) // 2 : len(data) // 2 + 256]
    for f in out.rglob("*") if out.exists() else []:
        if f.is_file():
            assert probe not in f.read_bytes(), f"foreign clip bytes found in {f}"


def test_clip_paths_outside_the_corpus_folder_are_refused(mustard_src, foreign_clip, tmp_path, capsys):
    task_dir = mustard_src / "MUStARD"
    good = next((task_dir / "video").glob("MUStARD_test_*.mp4")).name
    videos = ["--videos", str(foreign_clip.parent)]  # the user's clip folder holds restricted MOSI clips
    hostile = [  # (clip named by the row, extra options, what the one line says)
        ("../../../../etc/passwd", [], "points outside the video folders"),
        ("../../../../etc/no-such-file-xyz", [], "points outside the video folders"),  # same answer: no oracle
        (os.path.relpath(foreign_clip, task_dir), videos, "points outside"),
        (str(foreign_clip), [], "points outside"),
        (str(foreign_clip), videos, "is a MOSI clip"),  # inside --videos, but another corpus' clip
        (foreign_clip.name, videos, "is a MOSI clip"),
    ]
    for i, (clip, extra, expected) in enumerate(hostile):
        src = _jsonl_corpus(tmp_path / f"j{i}", [{"id": 0, "text": "ok", "label": "sincere", "video": good},
                                                {"id": 1, "text": "x", "label": "sarcastic", "video": clip}])  # fmt: skip
        shutil.copytree(task_dir / "video", src / "video")
        out = tmp_path / f"out{i}"
        code, err = _build(capsys, "mustard", "--source", str(src), *extra, "--out", str(out))
        assert code == 1 and not out.exists()
        line = _one_line_error(err, "test.jsonl:2:", expected)
        assert "No such file" not in line and "cannot decode" not in line and "not found" not in line
        assert main(["data", "build", "mustard", "--source", str(src), *extra, "--skip-bad", "--out", str(out)]) == 0
        assert datasets.load_dataset(str(out), "mustard", split="test")["id"] == ["0"]
        _assert_not_embedded(out, foreign_clip)


def test_link_out_of_the_video_folder_is_refused(mustard_src, foreign_clip, tmp_path, capsys):
    video = mustard_src / "MUStARD" / "video"
    victim = sorted(video.glob("MUStARD_test_*.mp4"))[0]
    victim.unlink()
    victim.symlink_to(foreign_clip)
    out = tmp_path / "out"
    code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--out", str(out))
    assert code == 1
    _one_line_error(err, "test.tsv:", "resolves outside the video folder")
    assert main(["data", "build", "mustard", "--source", str(mustard_src), "--skip-bad", "--out", str(out)]) == 0
    _assert_not_embedded(out, foreign_clip)
    inside = video / "MUStARD_test_0001.mp4"  # a link that stays inside the folder is fine
    target = video / "sub" / "real.mp4"
    target.parent.mkdir()
    shutil.move(inside, target)
    inside.symlink_to(target)
    ds = load_task("mustard", data=mustard_src, split="test", skip_bad=True, cache_dir=tmp_path / "c")
    assert "MUStARD_test_0001.mp4" in ds["clip_id"] and victim.name not in ds["clip_id"]


def test_load_task_rejects_clip_ids_outside_the_videos_folder(sample_videos_dir, tmp_path):
    src = _jsonl_corpus(tmp_path / "mosi", [{"id": 0, "text": "good", "label": "positive", "video": "MOSI_train_0000.mp4"},
                                           {"id": 1, "text": "bad", "label": "negative",
                                            "video": "../../../../etc/passwd"}])  # fmt: skip
    out = tmp_path / "built"
    build_dataset("mosi", src, out, text_only=True)  # text only: clip ids are stored, not followed
    with pytest.raises(ValueError, match=r"row 1 of mosi: clip path '../../../../etc/passwd' points outside"):
        load_task("mosi", data=out, videos=sample_videos_dir)
    (src / "test.jsonl").write_text(json.dumps({"id": 0, "text": "good", "label": "positive",
                                                "video": "MOSI_train_0000.mp4"}) + "\n")  # fmt: skip
    build_dataset("mosi", src, out, text_only=True, overwrite=True)
    ok = load_task("mosi", data=out, videos=sample_videos_dir, split="test")
    assert Path(ok.with_format("arrow")["video"].to_pylist()[0]["path"]).parent == sample_videos_dir.resolve()


# -- one-line errors --------------------------------------------------------------------------------------


def _tsv(folder: Path, body: bytes, split: str = "test") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.tsv").write_bytes(body)
    return folder.parent


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"id\ttext\tlabel\n", "split 'test' of meld is empty: it has no data rows"),
        (b"id\ttext\tlabel\n1\ta\tbored\n2\tb\tsleepy\n", "unknown label 'bored'"),
        (b"id\ttext\tlabel\tmood\n1\ta\tjoy\tx\n", "unknown column(s) ['mood']"),
        (b"id\ttext\tlabel\n1\ta\tjoy\n2\tcaf\xe9\tjoy\n", "test.tsv:3: not UTF-8"),
        (b"", "file is empty"),
    ],
)
def test_bad_tsv_gives_one_line(body, expected, tmp_path, capsys):
    src = _tsv(tmp_path / "src" / "MELD", body)
    code, err = _build(capsys, "meld", "--source", str(src), "--text-only", "--out", str(tmp_path / "o"))
    assert code == 1
    _one_line_error(err, expected)
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))


def test_all_rows_skipped_and_skip_bad_for_undecodable_rows(tmp_path, capsys):
    src = _tsv(tmp_path / "src" / "MELD", b"id\ttext\tlabel\n1\ta\tbored\n2\tb\tsleepy\n")
    code, err = _build(capsys, "meld", "--source", str(src), "--text-only", "--skip-bad", "--out", str(tmp_path / "o"))
    assert code == 1
    _one_line_error(err, "split 'test' of meld is empty: all 2 rows were skipped")
    assert "corresponds to no data" not in err
    _tsv(tmp_path / "src" / "MELD", b"id\ttext\tlabel\n1\ta\tjoy\n2\tcaf\xe9\tjoy\n3\tc\tanger\n")
    assert main(["data", "build", "meld", "--source", str(src), "--text-only", "--skip-bad",
                 "--out", str(tmp_path / "o")]) == 0  # fmt: skip
    assert datasets.load_dataset(str(tmp_path / "o"), split="test")["id"] == ["1", "3"]
    (rec,) = [json.loads(x) for x in (tmp_path / "o" / "skipped.jsonl").read_text().splitlines()]
    assert rec["line"] == 3 and "not UTF-8" in rec["reason"]


def test_long_texts_and_empty_texts(tmp_path, capsys):
    big = "w" * (1 << 20)  # 1 MB utterance: over csv's field limit, read literally from a TSV
    src = _tsv(tmp_path / "src" / "MELD", f"id\ttext\tlabel\n1\t{big}\tjoy\n2\t\tanger\n3\t  \tjoy\n".encode())
    assert main(["data", "build", "meld", "--source", str(src), "--text-only", "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "warning: 2 rows have an empty text" in captured.err
    ds = datasets.load_dataset(str(tmp_path / "o"), split="test")
    assert ds["text"] == [big, "", "  "]


def test_jsonl_text_not_a_string_is_an_error_not_a_repr(tmp_path, capsys):
    src = _jsonl_corpus(tmp_path / "src", [{"id": 0, "text": ["a", "b"], "label": "joy"}])
    code, err = _build(capsys, "meld", "--source", str(src), "--text-only", "--out", str(tmp_path / "o"))
    assert code == 1
    _one_line_error(err, "test.jsonl:1: 'text' must be a string, got list")


def test_cli_subprocess_prints_one_line_and_no_traceback(tmp_path):
    src = _tsv(tmp_path / "src" / "MELD", b"id\ttext\tlabel\n1\ta\tjoy\n1\tb\tjoy\n")
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    runs = {
        "duplicate id '1'": ["--out", str(tmp_path / "o")],
        "not written by mmla": ["--out", str(user)],
    }
    for needle, extra in runs.items():
        proc = subprocess.run([str(MMLA), "data", "build", "meld", "--source", str(src), "--text-only", *extra],
                              capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        errors = [x for x in proc.stderr.splitlines() if x.startswith("mmla data: error:")]
        assert len(errors) == 1 and needle in errors[0], proc.stderr
    assert (user / "keep.txt").read_text() == "mine"


def test_options_are_not_abbreviated(mustard_src, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["data", "build", "mustard", "--source", str(mustard_src), "--out", str(tmp_path / "o"), "--overwr"])
    assert err.value.code == 2 and "unrecognized arguments: --overwr" in capsys.readouterr().err


def test_half_cut_clip_is_refused_at_build_time_not_embedded_short(mustard_src, tmp_path, capsys):
    """A faststart mp4 cut in half still opens (its index promises every frame): the build names it."""
    video = mustard_src / "MUStARD" / "video"
    victim = sorted(video.glob("*.mp4"))[0]
    fast = faststart_copy(victim, tmp_path / "fast.mp4")
    victim.write_bytes(fast.read_bytes()[: fast.stat().st_size // 2])
    out = tmp_path / "built"
    code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--out", str(out))
    assert code == 1
    _one_line_error(err, victim.name, "truncated or damaged clip")
    assert not out.exists()
    code, err = _build(capsys, "mustard", "--source", str(mustard_src), "--out", str(out), "--skip-bad")
    assert code == 0
    skipped = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    assert any("truncated or damaged clip" in json.dumps(s) for s in skipped)
