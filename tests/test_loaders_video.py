"""sample_frames: uniform / fps sampling, max_pixels, inputs, metadata, clear errors."""

from __future__ import annotations

import pytest
import torch
from conftest import faststart_copy

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


@pytest.fixture(scope="module")
def multi_gop_clip(tmp_path_factory):
    """40 distinct frames with a keyframe every 6 (and B-frames), so the sorted batch must seek across GOPs."""
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    path = tmp_path_factory.mktemp("gop") / "gop.mp4"
    yy, xx = np.mgrid[0:48, 0:64]
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "18", "g": "6", "bf": "2", "sc_threshold": "0"}
        for i in range(40):
            img = np.stack([(xx * 4 + i * 6) % 256, (yy * 5 + i * 3) % 256, np.full_like(xx, i * 6)], -1)
            c.mux(s.encode(av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")))
        c.mux(s.encode())
    with av.open(str(path)) as c:
        keyframes = sum(p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size)
    assert keyframes >= 6
    return path


def test_batch_decode_across_gops_returns_the_exact_frames(multi_gop_clip):
    out = sample_frames(multi_gop_clip, num_frames=9, return_metadata=True)
    every = open_video(multi_gop_clip).get_frames_in_range(0, out.total_frames)  # plain sequential decode
    assert out.total_frames == 40 and out.indices == torch.linspace(0, 39, 9).round().long().tolist()
    assert torch.equal(out.frames, every.data[out.indices])
    assert out.timestamps == every.pts_seconds[out.indices].tolist()


def test_uint8_resize_matches_float_reference():
    from mmla.loaders.video import _resize

    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 90, 160, 3), dtype=torch.uint8, generator=g).permute(
        0, 3, 1, 2
    )  # like torchcodec
    fast, ref = _resize(frames, (45, 80)), _resize(frames.float(), (45, 80))
    assert fast.dtype == ref.dtype == torch.uint8 and fast.shape == ref.shape == (3, 3, 45, 80)
    assert (fast.int() - ref.int()).abs().max() <= 1
    assert _resize(frames, (90, 160)) is frames  # same size: untouched


def test_half_cut_faststart_clip_is_an_error_not_a_short_sample(clip, tmp_path):
    from mmla.loaders.video import clip_problem

    whole = faststart_copy(clip, tmp_path / "whole.mp4")
    assert sample_frames(whole, num_frames=4).shape[0] == 4 and clip_problem(whole) is None
    cut = tmp_path / "MIntRec_cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    dec = open_video(cut)  # it still opens: the index in front promises all 20 frames
    assert dec.metadata.num_frames_from_header == 20 and dec.metadata.num_frames_from_content < 20
    with pytest.raises(
        VideoDecodeError, match=r"MIntRec_cut\.mp4: truncated or damaged clip: only \d+ of the 20 "
    ) as ei:
        sample_frames(cut, num_frames=4)
    assert "\n" not in str(ei.value)
    with pytest.raises(VideoDecodeError, match=r"MIntRec_cut\.mp4"):
        sample_frames({"path": str(cut), "bytes": cut.read_bytes()})
    assert clip_problem(cut).startswith("truncated or damaged clip: only ")
