"""The MMLA release as published (Hub dataset ``THUIAR/MMLA-Datasets``) and as the upstream scripts read it.

One folder per corpus with tab-separated splits and, for corpora whose video is redistributed, the clips::

    <root>/<release folder>/train.tsv | dev.tsv | test.tsv    # Hub: id, text, label; upstream: id, utterance, <dim>
    <root>/<release folder>/video/**/<release_name>_<id>.mp4  # the Hub archive, extracted (any nesting)

The TSVs are read LITERALLY: one row per line, fields split on tabs, no quote processing. Real utterances
start with a quote (MUStARD: ``"Dave." Sounds like...``); Python's csv quoting would swallow the following
lines into one field. Every non-blank data line is one row or one reported error, so the rows read always
equal the data lines. Columns: an id (``id``), a text (``text`` or ``utterance``), a label (``label`` or the
task's dimension) and, kept as string columns, the corpus columns listed in :data:`EXTRA_COLUMNS`. Any other
column is an error naming the file: a misnamed column is never silently dropped or taken for another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mmla.loaders.sources import RawRow, Source, SourceError, split_of
from mmla.loaders.tasks import TaskSpec

TEXT_COLUMNS = ("text", "utterance")
ID_COLUMNS = ("id",)
EXTRA_COLUMNS = ("speaker", "season", "episode", "dialogue_id", "utterance_id")
"""Corpus columns kept as extra string columns (the sample release writes ``speaker``)."""


def _label_columns(task: TaskSpec) -> tuple[str, ...]:
    return ("label", task.dimension, task.dimension_text)


def _split_files(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(folder.glob("*.tsv")):
        split = split_of(path.stem)
        if split and split not in out:
            out[split] = path
    return out


def find(root: Path, task: TaskSpec) -> Source | None:
    """The corpus folder under ``root`` (or ``root`` itself when it holds the split TSVs)."""
    names = {n.lower() for n in (task.release_dir, task.release_name, task.dataset, task.key)}
    candidates = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in names] if root.is_dir() else []
    candidates.append(root)
    for folder in candidates:
        splits = _split_files(folder) if folder.is_dir() else {}
        if splits:
            video = next((folder / d for d in ("video", "videos") if (folder / d).is_dir()), None)
            return Source("mmla_release", folder, splits, video)
    return None


def _columns(header: list[str], task: TaskSpec, path: Path) -> tuple[int | None, int, int, dict[str, int]]:
    """(id, text, label, extras) column indices; unknown, duplicate or missing columns raise, naming the file."""
    names = [h.strip().lower() for h in header]
    expected = f"id, text (or utterance), label (or {task.dimension})"
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourceError(f"duplicate column(s) {dupes} in the header", path=path, line=1, hint=f"expected {expected}")

    def pick(options: tuple[str, ...], what: str) -> int | None:
        hits = [names.index(o) for o in dict.fromkeys(options) if o in names]
        if len(hits) > 1:
            raise SourceError(f"the header has {len(hits)} {what} columns {[header[i] for i in hits]}", path=path,
                              line=1, hint=f"keep one; expected {expected}")  # fmt: skip
        return hits[0] if hits else None

    text, label, uid = pick(TEXT_COLUMNS, "text"), pick(_label_columns(task), "label"), pick(ID_COLUMNS, "id")
    if text is None or label is None:
        raise SourceError(f"header {header} has no {'text' if text is None else 'label'} column", path=path, line=1,
                          hint=f"an MMLA release TSV has columns {expected}")  # fmt: skip
    used = {text, label, uid}
    extras = {names[i]: i for i in range(len(names)) if i not in used and names[i] in EXTRA_COLUMNS}
    unknown = [header[i] for i in range(len(names)) if i not in used and names[i] not in EXTRA_COLUMNS]
    if unknown:
        raise SourceError(f"unknown column(s) {unknown}", path=path, line=1,
                          hint=f"expected {expected}, optionally {', '.join(EXTRA_COLUMNS)}; rename or remove the "
                          f"column")  # fmt: skip
    return uid, text, label, extras


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            yield n, raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw.rstrip(b"\r")


def read(path: Path, task: TaskSpec) -> Iterator[RawRow | SourceError]:
    """Rows; a malformed row is yielded as a :class:`SourceError` (a bad header raises)."""
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise SourceError("file is empty (no header)", path=path, line=1, hint="an interrupted download? fetch again")
    try:
        header = first[1].decode("utf-8-sig").split("\t")
    except UnicodeDecodeError as err:
        raise SourceError(f"header is not UTF-8 text (byte {err.start})", path=path, line=1) from None
    uid_col, text_col, label_col, extras = _columns(header, task, path)
    data_lines = 0
    for line, raw in lines:
        if not raw.strip():
            continue
        data_lines += 1
        try:
            fields = raw.decode("utf-8").split("\t")
        except UnicodeDecodeError as err:
            yield SourceError(f"not UTF-8 text (byte {err.start} of the line)", path=path, line=line,
                              hint="re-save the file as UTF-8, or build with --skip-bad to skip the row")  # fmt: skip
            continue
        if len(fields) != len(header):
            yield SourceError(f"expected {len(header)} tab-separated fields, found {len(fields)}", path=path,
                              line=line, hint="fix or remove the row (a tab or line break inside a text?)")  # fmt: skip
            continue
        label = fields[label_col].strip()
        if not label:
            yield SourceError(f"empty {header[label_col]!r}", path=path, line=line, hint="every row needs a label")
            continue
        uid = fields[uid_col].strip() if uid_col is not None else str(data_lines - 1)
        if uid_col is not None and not uid:
            yield SourceError("empty 'id'", path=path, line=line, hint="every row needs an id (it names the clip)")
            continue
        yield RawRow(
            id=uid,
            text=fields[text_col],
            label=label,
            clip=f"{task.release_name}_{uid}.mp4" if uid_col is not None else None,
            path=str(path),
            line=line,
            extras={name: (fields[i] if fields[i] != "" else None) for name, i in extras.items()},
        )
