"""Shared fixtures: synthetic MMLA releases with real tiny clips for all 12 tasks.

Load a task from them with::

    from mmla.loaders import load_task
    ds = load_task("mintrec", data=sample_release)                                 # video corpora
    ds = load_task("mosi", data=sample_release, videos=sample_videos_dir)          # restricted corpora
    ds = load_task("mosi", data=sample_release, text_only=True, split="test")      # text only, any task
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Keep test builds out of the user's datasets cache (read by datasets at import time).
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="mmla-test-datasets-"))

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
"""``../shared`` beside the repo root (real MMLA text and upstream files); absent in a user's clone."""
SHARED_DATA = SHARED / "data"
SHARED_UPSTREAM = SHARED / "upstream"


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the sample releases are written to (release + manual_videos)."""
    from mmla.loaders.sample import write_sample_release

    out = tmp_path_factory.mktemp("mmla-sample")
    write_sample_release(out, per_class=2, seed=0)
    return out


@pytest.fixture(scope="session")
def sample_release(sample_root: Path) -> Path:
    """Release root with all 12 tasks (2 rows per class per split); pass it as ``load_task(task, data=...)``.

    Redistributable corpora have their clips inside the release; restricted ones (mosi, iemocap,
    iemocap_da, annomi_*) need ``videos=sample_videos_dir`` (or ``text_only=True``).
    """
    from mmla.loaders.sample import RELEASE_DIRNAME

    return sample_root / RELEASE_DIRNAME


@pytest.fixture(scope="session")
def sample_videos_dir(sample_root: Path) -> Path:
    """Clips of the restricted corpora, standing in for the user's ``manual_dir`` (``videos=``)."""
    from mmla.loaders.sample import MANUAL_DIRNAME

    return sample_root / MANUAL_DIRNAME


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real MMLA text (never copied into the repo); tests using it skip when it is absent."""
    if not (SHARED_DATA / "mintrec" / "train.jsonl").is_file():
        pytest.skip(f"{SHARED_DATA} not available")
    return SHARED_DATA


def faststart_copy(src: Path, dst: Path) -> Path:
    """Remux ``src`` with the index (moov) in front, as streaming-friendly mp4s are written."""
    av = pytest.importorskip("av")
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = dst.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # really faststart
    return dst
