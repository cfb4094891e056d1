"""sample_audio: the AAC tracks of the sample clips, resampling, mono mixing, missing / corrupt tracks; Audio column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmla.loaders.audio import AudioDecodeError, add_audio_column, has_audio, sample_audio
from mmla.loaders.sample import ClipSpec, write_clip
from mmla.training.testing import write_av_clip

pytest.importorskip("av")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    return {
        "sample": write_clip(d / "sample.mp4", ClipSpec(64, 48, 1.5, 10), seed=1),  # what mmla data sample writes
        "stereo44k": write_av_clip(d / "stereo44k.mp4", sampling_rate=44100, layout="stereo"),
        "8k": write_av_clip(d / "8k.mp4", sampling_rate=8000),
        "silent": write_av_clip(d / "silent.mp4", audio=False, seconds=1.5),
        "corrupt": write_av_clip(d / "corrupt.mp4", corrupt_audio=True),
    }


def _dominant_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_sample_release_clip_is_a_16k_waveform(clips):
    info = sample_audio(clips["sample"], return_info=True)
    wave = info.waveform
    assert wave.ndim == 1 and wave.dtype == np.float32 and info.sampling_rate == 16000
    assert info.source_rate == 16000 and info.source_channels == 1 and not info.silent
    assert info.duration == pytest.approx(1.5, abs=0.1)  # AAC adds at most a frame of padding
    assert 0.1 < np.abs(wave).max() <= 1.0
    assert _dominant_hz(wave, 16000) == pytest.approx(440.0, abs=5)  # write_clip's tone for seed 1


@pytest.mark.parametrize("name, source_rate, channels", [("stereo44k", 44100, 2), ("8k", 8000, 1)])
def test_odd_rates_resampled_and_mixed_to_mono(clips, name, source_rate, channels):
    info = sample_audio(clips[name], sampling_rate=16000, return_info=True)
    assert info.source_rate == source_rate and info.source_channels == channels
    assert info.waveform.ndim == 1 and info.duration == pytest.approx(1.0, abs=0.1)
    assert _dominant_hz(info.waveform, 16000) == pytest.approx(440.0, abs=5)  # the tone survives resampling
    assert sample_audio(clips[name], sampling_rate=24000).shape[0] == pytest.approx(24000, rel=0.1)


def test_max_seconds_and_input_forms(clips):
    path = clips["sample"]
    assert sample_audio(path, max_seconds=0.5).shape[0] == 8000
    from_bytes = sample_audio(path.read_bytes())
    np.testing.assert_array_equal(from_bytes, sample_audio(str(path)))
    np.testing.assert_array_equal(sample_audio({"path": str(path), "bytes": None}), from_bytes)


def test_datasets_video_value(clips):
    """A decoded datasets.Video value: a file on disk, or a clip embedded in the Parquet shard (bytes)."""
    import datasets

    ds = datasets.Dataset.from_dict({"video": [str(clips["stereo44k"])]}).cast_column("video", datasets.Video())
    assert sample_audio(ds[0]["video"]).shape[0] == pytest.approx(16000, rel=0.05)
    embedded = datasets.Dataset.from_dict({"video": [{"path": None, "bytes": clips["sample"].read_bytes()}]})
    value = embedded.cast_column("video", datasets.Video())[0]["video"]
    np.testing.assert_array_equal(sample_audio(value), sample_audio(clips["sample"]))


def test_missing_track_is_an_error_naming_the_clip_or_silence(clips):
    path = clips["silent"]
    assert not has_audio(path) and has_audio(clips["sample"])
    with pytest.raises(AudioDecodeError, match=r"silent\.mp4: the clip has no audio track.*--allow-silent"):
        sample_audio(path)
    with pytest.raises(AudioDecodeError) as err:
        sample_audio(path)
    assert "\n" not in str(err.value)
    info = sample_audio(path, allow_silent=True, return_info=True)
    assert info.silent and not info.waveform.any() and info.waveform.shape[0] == pytest.approx(24000, rel=0.1)


def test_corrupt_track_is_an_error_even_with_allow_silent(clips):
    for kw in ({}, {"allow_silent": True}):
        with pytest.raises(AudioDecodeError, match=r"corrupt\.mp4: cannot decode its audio track") as err:
            sample_audio(clips["corrupt"], **kw)
        assert "\n" not in str(err.value) and ".cpp" not in str(err.value)


def test_not_a_clip(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(AudioDecodeError, match=r"bad\.mp4: cannot open the clip"):
        sample_audio(bad)
    with pytest.raises(AudioDecodeError, match=r"gone\.mp4: clip file not found"):
        sample_audio(tmp_path / "gone.mp4")
    with pytest.raises(ValueError, match="max_seconds"):
        sample_audio(bad, max_seconds=0)


def test_audio_column_points_at_the_mp4(clips):
    """datasets.Audio decodes the AAC track straight from the mp4 path (torchcodec); nothing is copied."""
    import datasets

    ds = datasets.Dataset.from_dict({"id": ["a", "b"], "video": [str(clips["sample"]), str(clips["stereo44k"])]})
    ds = add_audio_column(ds.cast_column("video", datasets.Video()))
    assert isinstance(ds.features["audio"], datasets.Audio)
    assert ds.cast_column("audio", datasets.Audio(decode=False))[0]["audio"]["path"] == str(clips["sample"])
    row = ds[1]["audio"]
    assert row["sampling_rate"] == 16000 and row["array"].shape[0] == pytest.approx(16000, rel=0.05)
    np.testing.assert_allclose(ds[0]["audio"]["array"], sample_audio(clips["sample"]), atol=1e-6)


def test_audio_column_of_embedded_clips_shares_the_video_storage(clips):
    """Clips embedded in Parquet (a Hub build): the Audio column is the video column's Arrow data, not a copy."""
    import datasets

    data = clips["sample"].read_bytes()
    ds = datasets.Dataset.from_dict({"video": [{"path": "sample.mp4", "bytes": data}]})
    ds = add_audio_column(ds.cast_column("video", datasets.Video()))
    video, audio = ds.data.column("video").chunk(0), ds.data.column("audio").chunk(0)
    assert video.field("bytes").buffers()[2].address == audio.field("bytes").buffers()[2].address
    np.testing.assert_allclose(ds[0]["audio"]["array"], sample_audio(data), atol=1e-6)


def test_audio_column_clip_without_track(clips):
    import datasets

    paths = [str(clips["sample"]), str(clips["silent"])]
    ds = datasets.Dataset.from_dict({"video": paths}).cast_column("video", datasets.Video())
    with pytest.raises(AudioDecodeError, match=r"^row 1: .*silent\.mp4: the clip has no audio track.*allow_silent"):
        add_audio_column(ds)
    silent: list[str] = []
    out = add_audio_column(ds, allow_silent=True, silent=silent)
    assert silent == [str(clips["silent"])]
    wave = out[1]["audio"]["array"]
    assert not wave.any() and wave.shape[0] == pytest.approx(24000, rel=0.1)  # the clip's 1.5 s of silence
    assert out[0]["audio"]["array"].any()
    gone = datasets.Dataset.from_dict({"video": [{"path": "/nonexistent/x.mp4", "bytes": None}]})
    with pytest.raises(FileNotFoundError, match=r"row 0: its clip '/nonexistent/x\.mp4' is not a file"):
        add_audio_column(gone.cast_column("video", datasets.Video()))
    with pytest.raises(ValueError, match="no 'video' column"):
        add_audio_column(datasets.Dataset.from_dict({"text": ["a"]}))


# -- the builder's audio option (load_task(..., audio=True)) on a sample release ------------------------------


@pytest.fixture
def release(tmp_path):
    """A one-task sample release (MUStARD: its clips ship in the release) of our own, to damage."""
    from mmla.loaders.sample import write_sample_release

    return write_sample_release(tmp_path / "s", tasks="mustard", per_class=1, hub_layout=False)


def _clip(ds, i: int) -> str:
    import datasets

    return ds.cast_column("video", datasets.Video(decode=False))[i]["video"]["path"]


def test_builder_audio_column_decodes_the_clip_itself(sample_release, tmp_path):
    import datasets

    from mmla.loaders import load_task

    ds = load_task("mustard", data=sample_release, split="test", audio=True, cache_dir=tmp_path / "c")
    assert ds.features["audio"] == datasets.Audio(sampling_rate=16000) and "audio_silent" not in ds.column_names
    cell = ds.cast_column("audio", datasets.Audio(decode=False))[0]["audio"]
    assert cell == {"path": _clip(ds, 0), "bytes": None}  # the mp4 itself, not a copy
    assert cell["path"].endswith(".mp4") and Path(cell["path"]).is_relative_to(sample_release)
    audio = ds[0]["audio"]
    assert audio["sampling_rate"] == 16000
    np.testing.assert_allclose(audio["array"], sample_audio(cell["path"]), atol=1e-3)  # same track, same resampler
    assert _dominant_hz(audio["array"], 16000) == pytest.approx(_dominant_hz(sample_audio(cell["path"]), 16000))
    plain = load_task("mustard", data=sample_release, split="test", cache_dir=tmp_path / "c")
    assert "audio" not in plain.column_names  # default unchanged
    with pytest.raises(ValueError, match="audio=True needs the clips, and text_only=True loads none"):
        load_task("mustard", data=sample_release, audio=True, text_only=True)


def test_builder_clip_without_audio_track(release, tmp_path, caplog):
    from mmla.loaders import load_task
    from mmla.loaders.sources import SourceError

    first = load_task("mustard", data=release, split="test", cache_dir=tmp_path / "c0")
    path = Path(_clip(first, 0))
    path.unlink()  # sample clips may be hard links of one another
    write_av_clip(path, audio=False, seconds=1.5)
    with pytest.raises(SourceError) as err:
        load_task("mustard", data=release, split="test", audio=True, cache_dir=tmp_path / "c1")
    msg = str(err.value)
    assert "\n" not in msg and f"{path}: the clip has no audio track" in msg and ".tsv:" in msg  # file:line
    assert "skip_bad=True" in msg
    caplog.set_level("WARNING")
    for _ in range(2):  # the second load reads the cache, and still reports the clip
        caplog.clear()
        ds = load_task("mustard", data=release, split="test", audio=True, allow_silent=True, cache_dir=tmp_path / "c2")
        assert ds["audio_silent"] == [True] + [False] * (len(ds) - 1)
        assert f"1 clip(s) without an audio track got silence (allow_silent=True): {path.name}" in caplog.text
    wave = ds[0]["audio"]["array"]
    assert not wave.any() and wave.shape[0] == pytest.approx(24000, rel=0.1)
    assert ds[1]["audio"]["array"].any()
    kept = load_task("mustard", data=release, split="test", audio=True, skip_bad=True, cache_dir=tmp_path / "c3")
    assert len(kept) == len(first) - 1 and path.name not in kept["clip_id"]


def test_builder_corrupt_audio_track_is_an_error(release, tmp_path):
    from mmla.loaders import load_task
    from mmla.loaders.sources import SourceError

    first = load_task("mustard", data=release, split="test", cache_dir=tmp_path / "c0")
    path = Path(_clip(first, 1))
    path.unlink()
    write_av_clip(path, corrupt_audio=True)
    with pytest.raises(SourceError, match=rf"{path.name}: cannot decode its audio track") as err:
        load_task("mustard", data=release, split="test", audio=True, allow_silent=True, cache_dir=tmp_path / "c1")
    assert "\n" not in str(err.value)


def test_built_dataset_audio_column_shares_embedded_clips(release, tmp_path):
    """`mmla data build` embeds redistributable clips in Parquet; audio=True decodes the same bytes."""
    from mmla.loaders import load_task
    from mmla.loaders.build import build_dataset

    out = tmp_path / "built"
    build_dataset("mustard", release, out)
    ds = load_task("mustard", data=out, split="test", audio=True, cache_dir=tmp_path / "c")
    video, audio = ds.data.column("video").chunk(0), ds.data.column("audio").chunk(0)
    assert video.field("bytes").null_count == 0  # embedded
    assert video.field("bytes").buffers()[2].address == audio.field("bytes").buffers()[2].address
    src = load_task("mustard", data=release, split="test", audio=True, cache_dir=tmp_path / "c2")
    np.testing.assert_allclose(ds[0]["audio"]["array"], src[0]["audio"]["array"], atol=1e-6)


def test_older_torchcodec_without_public_container_metadata(clips, monkeypatch):
    """torchcodec 0.13 (the GPU image's, for torch 2.11) has no torchcodec.decoders.get_container_metadata."""
    import torchcodec.decoders

    from mmla.loaders.audio import _is_audio

    monkeypatch.delattr(torchcodec.decoders, "get_container_metadata")
    with pytest.raises(ImportError):
        from torchcodec.decoders import get_container_metadata  # noqa: F401
    assert has_audio(clips["sample"]) and not has_audio(clips["silent"])
    assert has_audio(clips["sample"].read_bytes()) and not has_audio(clips["silent"].read_bytes())
    info = sample_audio(clips["silent"], allow_silent=True, return_info=True)  # its duration from the old reader
    assert info.silent and info.duration == pytest.approx(1.5, abs=0.1)
    with pytest.raises(AudioDecodeError, match=r"silent\.mp4: the clip has no audio track"):
        sample_audio(clips["silent"])

    class AudioStreamMetadata:  # what 0.13's streams are: no media_type attribute
        pass

    class VideoStreamMetadata:
        pass

    assert _is_audio(AudioStreamMetadata()) and not _is_audio(VideoStreamMetadata())
