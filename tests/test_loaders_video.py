"""sample_frames: uniform / fps sampling, max_pixels, inputs, metadata, clear errors."""

from __future__ import annotations

import pytest
import torch

from mmla.loaders.sample import ClipSpec, write_clip
from mmla.loaders.video import VideoDecodeError, fit_size, open_video, sample_frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("v") / "c.mp4", ClipSpec(80, 60, 2.0, 10), seed=3)  # 20 frames


def test_default_eight_uniform_frames(clip):
    out = sample_frames(clip, return_metadata=True)
    assert out.frames.shape == (8, 3, 60, 80) and out.frames.dtype == torch.uint8
    assert out.indices[0] == 0 and out.indices[-1] == out.total_frames - 1 == 19
    assert out.timestamps == sorted(out.timestamps) and out.timestamps[-1] == pytest.approx(1.9, abs=0.01)
    assert out.source_fps == pytest.approx(10) and out.duration == pytest.approx(2.0, abs=0.05)
    # distinct frames (the test pattern moves), so sampling really picked different times
    assert not torch.equal(out.frames[0], out.frames[-1])


def test_fps_mode_and_cap(clip):
    assert sample_frames(clip, fps=2).shape[0] == 4  # 2 s * 2 fps
    assert sample_frames(clip, fps=2, num_frames=3).shape[0] == 3
    assert sample_frames(clip, fps=100).shape[0] == 20  # never more than the clip has


def test_max_pixels_keeps_aspect(clip):
    frames = sample_frames(clip, num_frames=2, max_pixels=1200)
    _, _, h, w = frames.shape
    assert h * w <= 1200 and abs(w / h - 80 / 60) < 0.15
    assert sample_frames(clip, num_frames=1, max_pixels=10**6).shape[-2:] == (60, 80)  # no upscaling
    assert fit_size(360, 640, 640 * 360 // 4) == (180, 320)


def test_inputs_path_dict_bytes_decoder(clip):
    ref = sample_frames(clip, num_frames=3)
    data = clip.read_bytes()
    for video in (str(clip), {"path": None, "bytes": data}, {"path": str(clip), "bytes": None}, open_video(clip)):
        assert torch.equal(sample_frames(video, num_frames=3), ref)


def test_undecodable_and_missing_name_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(VideoDecodeError, match=r"broken\.mp4"):
        sample_frames(bad)
    with pytest.raises(VideoDecodeError, match=r"nope\.mp4"):
        sample_frames(tmp_path / "nope.mp4")
    with pytest.raises(ValueError, match="num_frames"):
        sample_frames(write_clip(tmp_path / "ok.mp4", ClipSpec(64, 48, 0.5, 8)), num_frames=0)
