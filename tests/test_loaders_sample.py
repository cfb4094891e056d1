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
