"""Every task loads from the synthetic releases, with the registry's labels, every class, and decodable video."""

from __future__ import annotations

from collections import Counter

import pytest

from mmla.loaders import load_task, sample_frames
from mmla.loaders.sample import CLIP_SPECS
from mmla.loaders.tasks import TASKS


@pytest.mark.parametrize("key", list(TASKS))
def test_every_task_loads_with_video(key, sample_release, sample_videos_dir, tmp_path_factory):
    task = TASKS[key]
    videos = None if task.video.redistributable else sample_videos_dir
    dsd = load_task(key, data=sample_release, videos=videos)
    assert set(dsd) == {"train", "validation", "test"}
    for split, ds in dsd.items():
        assert ds.features["label"].names == list(task.labels)
        assert {"id", "text", "label", "dataset", "task", "video", "speaker"} <= set(ds.column_names)
        counts = Counter(ds["label"])
        assert sorted(counts) == list(range(len(task.labels))), f"{key}/{split} misses classes"
        assert set(counts.values()) == {2}
        assert set(ds["task"]) == {key} and set(ds["dataset"]) == {task.dataset}
    row = dsd["test"][0]
    frames = sample_frames(row["video"], num_frames=4)
    assert frames.shape[0] == 4 and frames.shape[1] == 3
    assert (frames.shape[2], frames.shape[3]) in {(s.height, s.width) for s in CLIP_SPECS}


@pytest.mark.parametrize("key", ["mosi", "annomi_therapist", "chsims2"])
def test_text_only_needs_no_video(key, sample_release):
    ds = load_task(key, data=sample_release, text_only=True, split="validation")
    assert "video" not in ds.column_names
    assert len(ds) == 2 * len(TASKS[key].labels)
    assert all(isinstance(t, str) and t for t in ds["text"])


def test_sample_release_has_varied_real_clips(sample_release):
    import av

    sizes, durations = set(), set()
    for clip in sorted((sample_release / "MIntRec" / "video").glob("*.mp4")):
        with av.open(str(clip)) as c:
            kinds = {s.type for s in c.streams}
            assert kinds == {"video", "audio"}
            v = c.streams.video[0]
            assert v.codec_context.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
            sizes.add((v.width, v.height))
            durations.add(round(float(c.duration) / 1e6, 1))
    assert len(sizes) >= 3 and min(durations) >= 0.4 and max(durations) <= 2.1 and len(durations) >= 3
    # restricted corpora keep their clips out of the release
    assert not (sample_release / "MOSI" / "video").exists()


def _tsv(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


@pytest.mark.parametrize("key", list(TASKS))
def test_hub_layout_has_the_same_rows_and_one_archive(key, sample_root):
    import tarfile

    from mmla.loaders.sample import HUB_DIRNAME, RELEASE_DIRNAME, SPLIT_FILES, hub_archive_name

    task = TASKS[key]
    hub, upstream = sample_root / HUB_DIRNAME / task.release_dir, sample_root / RELEASE_DIRNAME / task.release_dir
    archives = [p for p in hub.iterdir() if p.name.endswith(".tar.gz")]
    assert sorted(p.name for p in hub.iterdir() if p.suffix == ".tsv") == sorted(SPLIT_FILES.values())
    assert not (hub / "video").exists()  # no video/ folder on the Hub
    for name in SPLIT_FILES.values():
        header, rows = _tsv(hub / name)
        up_header, up_rows = _tsv(upstream / name)
        assert header == ["id", "text", "label"] and up_header[:3] == ["id", "utterance", task.dimension]
        assert rows == [r[:3] for r in up_rows]
    if not task.video.redistributable:
        assert archives == []
        return
    assert [p.name for p in archives] == [hub_archive_name(task)]
    with tarfile.open(archives[0]) as tf:
        members = {m.name: m for m in tf.getmembers() if m.isfile()}
        ids = [r[0] for name in SPLIT_FILES.values() for r in _tsv(hub / name)[1]]
        by_name = {n.rsplit("/", 1)[-1]: n for n in members}
        assert sorted(by_name) == sorted(f"{task.release_name}_{i}.mp4" for i in ids)
        assert all(n.count("/") == 2 for n in members)  # nested: <stem>/<split>/<clip>
        some = sorted(by_name)[0]
        assert tf.extractfile(members[by_name[some]]).read() == (upstream / "video" / some).read_bytes()


def test_real_hub_archive_names():
    from mmla.loaders.sample import hub_archive_name

    assert hub_archive_name(TASKS["mintrec"]) == "MIntRec_video.tar.gz"
    assert hub_archive_name(TASKS["urfunny2"]) == "UR-FUNNYv2_video.tar.gz"
    assert hub_archive_name(TASKS["chsims2"]) == "Ch-simsv2_video.tar.gz"
    assert hub_archive_name(TASKS["annomi_client"]) == "AnnoMI-client_video.tar.gz"


def test_out_is_claimed_and_replaced_only_with_overwrite(tmp_path, capsys):
    import os
    import time

    from mmla.cli.main import main
    from mmla.loaders.files import MARKER_NAME, output_kind

    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("keep me")
    assert main(["data", "sample", "--out", str(user), "--tasks", "mustard", "--per-class", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mmla data: error: --out ") and "not written by mmla" in err and err.count("\n") == 1
    assert [p.name for p in user.iterdir()] == ["thesis.tex"]

    out = tmp_path / "s"
    stale = tmp_path / ".s.tmp-killed"
    stale.mkdir()
    os.utime(stale, (time.time() - 3 * 86400,) * 2)  # left by a killed run days ago
    assert main(["data", "sample", "--out", str(out), "--tasks", "mustard", "--per-class", "1"]) == 0
    assert "Hub layout" in capsys.readouterr().out and output_kind(out) == "mmla data sample"
    assert (out / "MMLA-Datasets-hub" / "MUStARD" / "MUStARD_video.tar.gz").is_file()
    assert not stale.exists() and not list(tmp_path.glob(".s.*"))
    assert main(["data", "sample", "--out", str(out), "--tasks", "mustard", "--per-class", "1"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    (out / "MMLA-Datasets" / "extra.txt").write_text("from the earlier sample")
    assert main(["data", "sample", "--out", str(out), "--tasks", "mintrec", "--per-class", "1", "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "MMLA-Datasets").iterdir()) == ["MIntRec"]  # replaced, not merged
    assert (out / MARKER_NAME).is_file() and not list(tmp_path.glob(".s.*"))
    with pytest.raises(SystemExit):  # no abbreviations: --overwrit is not --overwrite
        main(["data", "sample", "--out", str(out), "--overwrit"])
    assert "unrecognized arguments: --overwrit" in capsys.readouterr().err
