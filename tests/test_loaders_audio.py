"""sample_audio: the AAC tracks of the sample clips, resampling, mono mixing, missing / corrupt tracks; Audio column."""

from __future__ import annotations

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
    embedded = datasets.Dataset.from_dict({"video": [{"path": None, "bytes": clips["sample"].read_bytes()}]})
    with pytest.raises(ValueError, match=r"embedded or not a local file.*sample_audio"):
        add_audio_column(embedded.cast_column("video", datasets.Video()))
