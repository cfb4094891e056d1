"""Atomic writes, checked JSON reads and output-folder claims: the bottom layer every package writes through.

Every output is written to a temp file in its own folder and renamed over the target, so a killed run
leaves the old file or the new one, never half of one. Temp files get the permissions a plain ``open``
would give (``0666 & ~umask``), not ``mkstemp``'s 0600.

Output folders are *claimed* before any work starts (:func:`claim_output_dir`): a command never writes
into, and never replaces, a folder that it did not create itself. A folder is recognised as ours by a
marker file (:data:`MARKER_NAME`) naming the command that wrote it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MARKER_NAME = ".mmla-output.json"
"""Marker file that says which mmla command wrote a folder (``{"kind": ..., "created": ...}``)."""

_STALE_TMP_SECONDS = 24 * 3600


class OutputDirError(ValueError):
    """An output folder that may not be written: the message names the folder and what to do."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _chmod_default(path: str | os.PathLike[str], *, folder: bool = False) -> None:
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """``mkdtemp`` with the permissions of a plain ``mkdir`` (not 0700)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    _chmod_default(tmp, folder=True)
    return tmp


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        _chmod_default(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save_figure_atomic(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """``fig.savefig`` through a temp file (matplotlib picks the format from the suffix, so keep it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; a syntax error names ``file:line:column``."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start}); is this the right file?") from None


def output_kind(path: str | os.PathLike[str]) -> str | None:
    """The mmla command that wrote ``path`` (from its marker), or None when it is not an mmla output."""
    marker = Path(path) / MARKER_NAME
    if not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("kind") if isinstance(data, dict) else None


def mark_output_dir(path: str | os.PathLike[str], kind: str) -> Path:
    """Write the marker that lets a later run recognise ``path`` as an earlier ``kind`` output."""
    return write_json_atomic(Path(path) / MARKER_NAME, {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _contains(outer: Path, inner: Path) -> bool:
    return inner == outer or outer in inner.parents


def claim_output_dir(
    path: str | os.PathLike[str],
    kind: str,
    *,
    overwrite: bool = False,
    resume: bool = False,
    protected: Iterable[str | os.PathLike[str] | None] = (),
    option: str = "--out",
) -> Path:
    """Check that ``path`` may be written by the command ``kind``, before any work is done; return it resolved.

    Allowed: a new or empty folder, or one that an earlier ``kind`` run wrote (its marker) when ``resume``
    (the run continues it) or ``overwrite`` (the caller replaces it) is set. Refused, always: a file, a
    folder that holds inputs of this run (``protected``: ``--source``, ``--videos``, ...), a non-empty folder
    without our marker (user files are never replaced, ``--overwrite`` or not), a folder we cannot write.
    Nothing is created here: the caller writes the marker (:func:`mark_output_dir`) with its first output.
    """
    out = Path(path).expanduser().resolve()
    for p in protected:
        if p is None:
            continue
        inp = Path(p).expanduser().resolve()
        if _contains(out, inp):
            raise OutputDirError(
                f"{option} {path} {'is' if out == inp else 'contains'} the input {p}; writing there would destroy "
                f"it. Choose a separate output folder"
            )
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{option} {path} is a file, not a folder. Choose a folder path")
    if out.is_dir() and any(out.iterdir()):
        found = output_kind(out)
        if found is None:
            raise OutputDirError(
                f"{option} {path} is not empty and was not written by mmla (no {MARKER_NAME}); its files are "
                f"never replaced. Choose a new or empty folder"
            )
        if found != kind:
            raise OutputDirError(
                f"{option} {path} holds the output of `{found}`, not of `{kind}`. Choose another folder"
            )
        if not (overwrite or resume):
            raise OutputDirError(
                f"{option} {path} holds an earlier `{kind}` output. Pass --overwrite to replace it, or choose "
                f"another folder"
            )
    probe = out if out.is_dir() else next((p for p in out.parents if p.exists()), out.parent)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputDirError(f"{option} {path}: {probe} is not writable. Choose a folder you can write to")
    return out


def replace_dir_atomic(tmp: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Move the finished folder ``tmp`` to ``out``; an existing ``out`` (ours, claimed) is swapped out, then removed."""
    tmp, out = Path(tmp), Path(out)
    if out.exists():
        old = make_temp_dir(out.parent, f".{out.name}.old-")
        os.replace(out, old / out.name)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    return out


def clean_stale_temps(parent: str | os.PathLike[str], name: str, *, older_than: float = _STALE_TMP_SECONDS) -> int:
    """Remove ``.NAME.tmp-*`` / ``.NAME.old-*`` folders left by killed runs (older than ``older_than`` s)."""
    parent = Path(parent)
    if not parent.is_dir():
        return 0
    now, removed = time.time(), 0
    for p in list(parent.glob(f".{name}.tmp-*")) + list(parent.glob(f".{name}.old-*")):
        try:
            if p.is_dir() and now - p.stat().st_mtime > older_than:
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike[str], kind: str | None = None) -> Iterator[Path]:
    """A temp folder next to ``out`` to write into; it replaces ``out`` only when the block completes.

    Stale temps of killed runs are removed first; with ``kind`` the folder gets its marker before the swap. On
    any failure the temp folder is removed, so ``out`` is the previous folder or none, never half of one.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out.parent, out.name)
    tmp = make_temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        yield tmp
        if kind is not None:
            mark_output_dir(tmp, kind)
        replace_dir_atomic(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
