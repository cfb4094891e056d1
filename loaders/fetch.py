"""License-aware fetching of the MMLA release.

Redistributable corpora: only that corpus' files are downloaded from the Hub release
(``THUIAR/MMLA-Datasets``) with ``huggingface_hub.snapshot_download(allow_patterns=...)``
(resumable; the Hub cache is shared), at a pinned revision, and every LFS file is checked
against the sha256 the Hub reports. Restricted corpora (MOSI, IEMOCAP, IEMOCAP-DA, Anno-MI)
are never downloaded as video: only their text; the clips come from the user
(``videos=`` / ``--videos DIR``), obtained from the official source under its license.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import huggingface_hub

from mmla.loaders.tasks import MMLA_HUB_REPO, TaskSpec

MMLA_HUB_REVISION = os.environ.get("MMLA_HUB_REVISION", "main")
"""Revision of ``THUIAR/MMLA-Datasets`` to download. Set the env var (or pass ``revision=``) to a commit
sha to pin it; the default follows ``main`` because the release's commit could not be verified offline."""


def restricted_message(task: TaskSpec) -> str:
    pol = task.video
    return (
        f"{task.dataset} videos are not redistributed (license: {pol.license}). Get them from "
        f"{pol.source_url or task.homepage}. {pol.instructions} Then pass videos=<that folder> (CLI: --videos DIR), "
        f"or use text_only=True (CLI: --text-only)."
    )


def missing_videos_message(task: TaskSpec, searched: Iterable[Path] = ()) -> str:
    where = ", ".join(str(p) for p in searched) or "no video folder"
    if not task.video.redistributable:
        return f"searched {where}. {restricted_message(task)}"
    return (
        f"searched {where}; download the clips with `mmla data fetch {task.key}` / load_task(..., "
        f"data={MMLA_HUB_REPO!r}), pass videos=<folder of {task.release_name}_<id>.mp4>, or use text_only=True"
    )


def require_videos(task: TaskSpec, videos: str | os.PathLike | None, *, text_only: bool) -> None:
    """Fail early, with the official source and expected layout, when a restricted corpus has no clip folder."""
    if text_only or task.video.redistributable:
        return
    if videos is None:
        raise FileNotFoundError(restricted_message(task))
    if not Path(videos).expanduser().is_dir():
        raise FileNotFoundError(f"videos folder {videos} does not exist. {restricted_message(task)}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksums(
    local_dir: Path, repo_id: str, patterns: list[str], *, revision: str, token: str | bool | None = None
) -> int:
    """Compare local files with the Hub's LFS sha256; a mismatching file is deleted and reported. Returns #checked."""
    api = huggingface_hub.HfApi()
    folders = sorted({p.split("/")[0] for p in patterns})
    checked = 0
    for folder in folders:
        for entry in api.list_repo_tree(
            repo_id, path_in_repo=folder, recursive=True, revision=revision, repo_type="dataset", token=token
        ):
            lfs = getattr(entry, "lfs", None)
            if lfs is None or not any(fnmatch.fnmatch(entry.path, p) for p in patterns):
                continue
            local = local_dir / entry.path
            if not local.is_file():
                raise FileNotFoundError(f"{local}: listed in {repo_id}@{revision} but not downloaded; run again")
            got = _sha256(local)
            if got != lfs.sha256:
                local.unlink()
                raise RuntimeError(
                    f"{local}: sha256 {got} does not match the Hub's {lfs.sha256} ({repo_id}@{revision}); "
                    f"the corrupt file was removed, run again to re-download it"
                )
            checked += 1
    return checked


def fetch_release(
    task: TaskSpec,
    dest: str | os.PathLike | None = None,
    *,
    text_only: bool = False,
    repo_id: str = MMLA_HUB_REPO,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
) -> Path:
    """Download one corpus of the Hub release (text; plus clips when redistributable and wanted); return the root.

    The result is an MMLA release folder (``<root>/<release folder>/{train,dev,test}.tsv`` and ``video/``).
    """
    revision = revision or MMLA_HUB_REVISION
    patterns = [f"{task.release_dir}/*.tsv"]
    if task.video.redistributable and not text_only:
        patterns.append(f"{task.release_dir}/video/*")
    local = huggingface_hub.snapshot_download(
        repo_id=repo_id,
        repo_type="dataset",
        revision=revision,
        allow_patterns=patterns,
        local_dir=dest,
        cache_dir=cache_dir,
        token=token,
    )
    local = Path(local)
    verify_checksums(local, repo_id, patterns, revision=revision, token=token)
    return local
