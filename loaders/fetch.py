"""Fetching one corpus of the MMLA release from the Hub, in the layout the Hub really has.

``THUIAR/MMLA-Datasets`` holds one folder per corpus (:attr:`TaskSpec.release_dir`) with ``train.tsv``,
``dev.tsv`` and ``test.tsv`` (columns ``id, text, label``) and, for corpora whose video MMLA redistributes,
ONE archive of clips whose name follows no rule (``MIntRec/MIntRec_video.tar.gz``,
``AnnoMi-client/AnnoMI-client_video.tar.gz``, ...). There is no ``video/`` folder on the Hub, so the archive
is found by listing the corpus folder (any ``*.tar.gz``, ``*.tgz``, ``*.tar`` or ``*.zip`` in it), never by
a guessed name. What this module writes::

    <root>/<release_dir>/{train,dev,test}.tsv
    <root>/<release_dir>/video/<the archive's own folders>/<prefix>_<id>.mp4   (+ video/.extracted.json)

Every file comes through ``huggingface_hub.hf_hub_download`` at one commit (the revision is resolved to a
commit sha first, so the TSVs and the archive always belong together). huggingface_hub resumes a dropped
connection with a ``Range`` request, skips files already downloaded at that commit, and (for Xet-backed
repos, as the Hub is now) keeps downloaded chunks in its Xet cache, so a killed run does not start from
zero. Each file is then checked against the sha256 the Hub lists for it (the git blob sha1 for non-LFS
files); a mismatching file is deleted and reported. The archive is extracted safely (no absolute paths, no
``..``, no links out of the target, no device files) into a temp folder next to ``video/`` that is renamed
into place only when complete, with a marker holding the archive's sha256 so that a re-run skips it.

Restricted corpora (MOSI, IEMOCAP, IEMOCAP-DA: TSVs only on the Hub) are never downloaded as video, even if
an archive appeared in their folder: their clips come from the user (``videos=`` / ``--videos DIR``),
obtained from the official source under its license.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mmla.loaders.files import claim_output_dir, mark_output_dir, output_kind, read_json, staged_dir, write_json_atomic
from mmla.loaders.tasks import MMLA_HUB_REPO, TaskSpec

MMLA_HUB_REVISION = os.environ.get("MMLA_HUB_REVISION") or "main"
"""Revision of ``THUIAR/MMLA-Datasets`` fetched by default. ``main``, not a pinned sha: neither the upstream
code (github.com/thuiar/MMLA) nor its README names a Hub commit, and the Hub cannot be reached from where this
was written, so no sha could be verified. Every fetch resolves the revision to a commit sha, prints it and
records it in ``video/.extracted.json``; pass that sha (``--revision`` / ``revision=`` / the env var
``MMLA_HUB_REVISION``) to reproduce a fetch exactly."""

FETCH_KIND = "mmla data fetch"
SPLIT_FILES = ("train.tsv", "dev.tsv", "test.tsv")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
EXTRACTED_MARKER = ".extracted.json"
VIDEO_DIRNAME = "video"


class FetchError(RuntimeError):
    """A download that cannot be completed or trusted; the message names the file and says what to do."""


class ArchiveError(RuntimeError):
    """An archive that is unsafe, truncated or corrupt; nothing of it was extracted."""


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
        f"searched {where}; download the clips with `mmla data fetch {task.key} --videos` / load_task(..., "
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


# -- checksums -----------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    """The git object id of a file, which the Hub lists as ``oid`` for files not stored in LFS."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_download(local: Path, entry: Any, *, where: str) -> str:
    """Check ``local`` against the Hub's listing ``entry`` (a ``RepoFile``); return its sha256 (or git oid).

    LFS files are compared by sha256, other files by git blob sha1. A mismatch deletes the file and raises
    :class:`FetchError` naming it, so that a re-run downloads it anew instead of trusting it.
    """
    lfs = getattr(entry, "lfs", None)
    if lfs is not None:
        kind, expected, got = "sha256", lfs.sha256, _sha256(local)
    else:
        kind, expected, got = "git sha1", entry.blob_id, _git_blob_sha1(local)
    if got != expected:
        local.unlink(missing_ok=True)
        raise FetchError(
            f"{local}: {kind} {got} does not match the Hub's {expected} ({where}); the file was removed, "
            f"run the fetch again to download it anew"
        )
    return got


# -- safe extraction -----------------------------------------------------------------------------------


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


_DRIVE = re.compile(r"^[A-Za-z]:")


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_name(archive: Path, name: str) -> None:
    """Reject absolute names, drive letters and ``..`` before anything is written."""
    if not name or "\x00" in name:
        raise ArchiveError(f"{archive}: member {name!r} has an invalid name; nothing was extracted")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise ArchiveError(f"{archive}: member {name!r} has an absolute path; nothing was extracted")
    if ".." in PurePosixPath(posix).parts:
        raise ArchiveError(f"{archive}: member {name!r} points outside the target (..); nothing was extracted")


def _check_tar_member(archive: Path, member: tarfile.TarInfo, dest: str) -> None:
    """Our own checks (on top of tarfile's ``data`` filter), done against the folder as extracted so far."""
    _check_name(archive, member.name)
    if member.isdev() or not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise ArchiveError(f"{archive}: member {member.name!r} is a device or special file; nothing was extracted")
    target = os.path.realpath(os.path.join(dest, member.name))
    if not _inside(dest, target):
        raise ArchiveError(f"{archive}: member {member.name!r} would be written outside the target (through a "
                           f"link); nothing was extracted")  # fmt: skip
    if member.issym() or member.islnk():
        link = member.linkname.replace("\\", "/")
        if link.startswith("/") or _DRIVE.match(link):
            raise ArchiveError(f"{archive}: member {member.name!r} links to the absolute path {member.linkname!r}; "
                               f"nothing was extracted")  # fmt: skip
        base = os.path.join(dest, os.path.dirname(member.name)) if member.issym() else dest
        resolved = os.path.realpath(os.path.join(base, link))
        if not _inside(dest, resolved):
            raise ArchiveError(f"{archive}: member {member.name!r} links to {member.linkname!r}, outside the "
                               f"target; nothing was extracted")  # fmt: skip


def _extract_tar(archive: Path, dest: str) -> int:
    count = 0
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:  # one streaming pass: every member is checked right before it is written
            _check_tar_member(archive, member, dest)
            tf.extract(member, dest, filter="data")
            count += member.isfile()
    return count


def _extract_zip(archive: Path, dest: str) -> int:
    count = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _check_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"{archive}: member {info.filename!r} is a symbolic link (not supported in zip "
                                   f"archives); nothing was extracted")  # fmt: skip
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded (most zips)
                raise ArchiveError(f"{archive}: member {info.filename!r} is a device or special file; nothing was "
                                   f"extracted")  # fmt: skip
            target = os.path.realpath(os.path.join(dest, info.filename))
            if not _inside(dest, target):
                raise ArchiveError(f"{archive}: member {info.filename!r} would be written outside the target; "
                                   f"nothing was extracted")  # fmt: skip
            zf.extract(info, dest)
            count += not info.is_dir()
    return count


def _extract_one(archive: Path, dest: Path) -> int:
    root = os.path.realpath(dest)
    with open(archive, "rb") as fh:
        magic = fh.read(4)
    try:
        if magic.startswith(b"PK") or archive.name.lower().endswith(".zip"):
            return _extract_zip(archive, root)
        return _extract_tar(archive, root)
    except ArchiveError:
        raise
    except tarfile.FilterError as err:  # tarfile's own "data" filter caught what our checks let through
        raise ArchiveError(f"{archive}: unsafe member ({err}); nothing was extracted") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ArchiveError(
            f"{archive}: cannot be extracted, it is truncated or corrupt ({reason}); nothing was extracted"
        ) from None


def extract_archives(archives: list[Path], target: str | os.PathLike, *, info: dict[str, Any] | None = None) -> int:
    """Extract ``archives`` into the folder ``target`` (their nested folders kept); return the number of files.

    Everything goes to a temp folder next to ``target`` that replaces it only when all archives are complete, so
    a failure (unsafe member, truncated or corrupt archive, full disk) leaves the previous ``target`` or none,
    never half of one. ``info`` is written to ``target/.extracted.json`` (the marker that lets a re-run skip).
    """
    with staged_dir(target) as tmp:
        count = sum(_extract_one(Path(a), tmp) for a in archives)
        write_json_atomic(tmp / EXTRACTED_MARKER, {**(info or {}), "files": count})
    return count


# -- the fetch -----------------------------------------------------------------------------------------


@dataclass
class FetchResult:
    """What one fetch produced: the release root (what ``load_task`` and the readers take) and details."""

    root: Path
    folder: Path
    revision: str
    """The commit sha everything was downloaded from."""
    tsvs: list[Path] = field(default_factory=list)
    video_dir: Path | None = None
    clips: int = 0
    archives: list[str] = field(default_factory=list)
    skipped_extraction: bool = False


def default_fetch_dir(repo_id: str = MMLA_HUB_REPO) -> Path:
    """``$MMLA_FETCH_DIR`` or ``$HF_HOME/mmla/<owner>--<name>``: a plain folder (extracted clips do not belong
    in the Hub's content-addressed cache)."""
    env = os.environ.get("MMLA_FETCH_DIR")
    if env:
        return Path(env).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "mmla" / repo_id.replace("/", "--")


def _hub_error(err: Exception, what: str) -> FetchError:
    line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return FetchError(f"{what}: {line}")


def _list_corpus(api: Any, repo_id: str, folder: str, commit: str, token: Any) -> list[Any]:
    from huggingface_hub import errors
    from huggingface_hub.hf_api import RepoFile

    try:
        entries = list(api.list_repo_tree(repo_id, path_in_repo=folder, revision=commit, repo_type="dataset",
                                          token=token))  # fmt: skip
    except errors.EntryNotFoundError:
        raise FileNotFoundError(f"{repo_id}@{commit[:12]} has no folder {folder}/") from None
    except errors.HfHubHTTPError as err:
        raise _hub_error(err, f"listing {repo_id}/{folder}@{commit[:12]}") from None
    return [e for e in entries if isinstance(e, RepoFile) and posixpath.dirname(e.path) == folder]


_TRANSPORT = {"httpx", "httpx2", "httpcore"}


def _download(entry: Any, *, repo_id: str, commit: str, root: Path, token: Any, endpoint: str | None) -> Path:
    import huggingface_hub
    from huggingface_hub import errors

    try:
        path = huggingface_hub.hf_hub_download(repo_id, entry.path, repo_type="dataset", revision=commit,
                                               local_dir=root, token=token, endpoint=endpoint)  # fmt: skip
    except errors.HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        hint = "check your token (HF_TOKEN or `hf auth login`)" if status in (401, 403) else "run again to resume"
        line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FetchError(f"downloading {repo_id}/{entry.path}@{commit[:12]}: {line}; {hint}") from None
    except OSError as err:  # huggingface_hub's size check, a dropped connection after its retries, a full disk
        raise FetchError(f"downloading {repo_id}/{entry.path}@{commit[:12]}: {err}; run again to resume") from None
    except Exception as err:  # transport errors after huggingface_hub's own retries (httpx, Xet)
        if not isinstance(err, errors.XetDownloadError) and type(err).__module__.split(".")[0] not in _TRANSPORT:
            raise
        raise FetchError(f"downloading {repo_id}/{entry.path}@{commit[:12]}: {err}; run again to resume") from None
    return Path(path)


def _extracted(video_dir: Path, archives: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The marker of an earlier extraction of exactly these archives (by sha256), else None."""
    marker = video_dir / EXTRACTED_MARKER
    if not marker.is_file():
        return None
    try:
        data = read_json(marker)
    except ValueError:
        return None
    done = sorted((a.get("path"), a.get("sha256")) for a in data.get("archives", []) if isinstance(a, dict))
    want = sorted((a["path"], a["sha256"]) for a in archives)
    return data if done == want else None


def fetch_corpus(
    task: TaskSpec,
    dest: str | os.PathLike | None = None,
    *,
    text_only: bool = False,
    repo_id: str = MMLA_HUB_REPO,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    keep_archive: bool = False,
) -> FetchResult:
    """Download one corpus' TSVs (and, unless ``text_only``, its clip archive when redistributable) and extract.

    ``dest``: the local release root (default :func:`default_fetch_dir`); it must be new, empty or an earlier
    fetch. The archive is deleted after a complete extraction unless ``keep_archive`` (the marker keeps its
    sha256, so a re-run neither downloads nor extracts it again).
    """
    import huggingface_hub
    from huggingface_hub import errors

    revision = revision or MMLA_HUB_REVISION
    option = "--out" if dest is not None else "the fetch folder ($MMLA_FETCH_DIR)"
    root = claim_output_dir(dest if dest is not None else default_fetch_dir(repo_id), FETCH_KIND, resume=True,
                            option=option)  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    if output_kind(root) != FETCH_KIND:
        mark_output_dir(root, FETCH_KIND)

    api = huggingface_hub.HfApi(endpoint=endpoint, token=token)
    try:
        commit = api.dataset_info(repo_id, revision=revision, token=token).sha
    except errors.RevisionNotFoundError:
        raise ValueError(f"{repo_id} has no revision {revision!r}: pass a branch, tag or commit sha") from None
    except errors.RepositoryNotFoundError:
        raise FileNotFoundError(f"{repo_id}: no such dataset on the Hub (or it is private: log in)") from None
    except errors.HfHubHTTPError as err:
        raise _hub_error(err, f"{repo_id}@{revision}") from None
    if not commit:
        raise FetchError(f"{repo_id}@{revision}: the Hub returned no commit sha")
    where = f"{repo_id}@{commit[:12]}"

    folder = task.release_dir
    files = _list_corpus(api, repo_id, folder, commit, token)
    by_name = {posixpath.basename(e.path): e for e in files}
    missing = [n for n in SPLIT_FILES if n not in by_name]
    if missing:
        raise FileNotFoundError(
            f"{where}: {folder}/ has no {', '.join(missing)} (found: {', '.join(sorted(by_name)) or 'nothing'})"
        )
    result = FetchResult(root=root, folder=root / folder, revision=commit)
    for name in SPLIT_FILES:
        entry = by_name[name]
        local = _download(entry, repo_id=repo_id, commit=commit, root=root, token=token, endpoint=endpoint)
        verify_download(local, entry, where=where)
        result.tsvs.append(local)

    if text_only or not task.video.redistributable:
        return result  # restricted corpora: an archive in their folder is never requested

    archives = sorted((e for e in files if is_archive(e.path)), key=lambda e: e.path)
    if not archives:
        raise FileNotFoundError(
            f"{where}: {folder}/ holds no clip archive (*.tar.gz, *.tgz, *.tar, *.zip; found: "
            f"{', '.join(sorted(by_name))}); fetch with text_only=True (CLI: without --videos)"
        )
    wanted = [{"path": e.path, "sha256": e.lfs.sha256 if e.lfs else e.blob_id, "size": e.size} for e in archives]
    result.archives = [e.path for e in archives]
    video_dir = result.folder / VIDEO_DIRNAME
    result.video_dir = video_dir
    done = _extracted(video_dir, wanted)
    if done is not None:
        result.clips, result.skipped_extraction = int(done.get("files", 0)), True
        return result

    local_archives = []
    for entry in archives:
        local = _download(entry, repo_id=repo_id, commit=commit, root=root, token=token, endpoint=endpoint)
        verify_download(local, entry, where=where)
        local_archives.append(local)
    info = {"repo_id": repo_id, "revision": commit, "archives": wanted}
    result.clips = extract_archives(local_archives, video_dir, info=info)
    if not keep_archive:
        for local in local_archives:
            local.unlink(missing_ok=True)
    return result
