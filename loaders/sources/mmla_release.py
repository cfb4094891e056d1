"""The MMLA release as published (Hub dataset ``THUIAR/MMLA-Datasets``, also on Google Drive).

One folder per corpus with tab-separated splits and the clips (redistributable corpora only)::

    <root>/<release folder>/train.tsv | dev.tsv | test.tsv     # id, utterance, <dimension> (+ corpus columns)
    <root>/<release folder>/video/<release_name>_<id>.mp4

The upstream preprocessing (``thuiar/MMLA`` ``data_preprocess/generate_test_json.py``) reads
``row["id"]``, ``row["utterance"]`` and ``row[<dimension>]`` and names clips
``f"{dataset}_{id}.mp4"``; ``text``/``label`` columns are accepted too.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from mmla.loaders.sources import RawRow, Source, SourceError, split_of
from mmla.loaders.tasks import TaskSpec

TEXT_COLUMNS = ("utterance", "text", "sentence", "transcript")
ID_COLUMNS = ("id", "index", "utterance_id")


def _label_columns(task: TaskSpec) -> tuple[str, ...]:
    return (task.dimension, "label", task.key, task.dimension_text)


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


def _pick(header: list[str], names: tuple[str, ...]) -> str | None:
    lower = {h.strip().lower(): h for h in header}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def read(path: Path, task: TaskSpec) -> Iterator[RawRow | SourceError]:
    """Rows; a malformed row is yielded as a :class:`SourceError` (a bad header raises)."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        header = reader.fieldnames or []
        text_col, label_col = _pick(header, TEXT_COLUMNS), _pick(header, _label_columns(task))
        id_col = _pick(header, ID_COLUMNS)
        if text_col is None or label_col is None:
            raise SourceError(
                f"header {header} has no {'text' if text_col is None else 'label'} column",
                path=path,
                line=1,
                hint=f"an MMLA release TSV needs columns id, utterance and {task.dimension!r} (or text, label)",
            )
        known = {text_col, label_col, id_col}
        for n, row in enumerate(reader):
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                yield SourceError(
                    f"expected {len(header)} tab-separated fields", path=path, line=line, hint="fix or remove the row"
                )
                continue
            label = row[label_col].strip()
            if not label:
                yield SourceError(f"empty {label_col!r}", path=path, line=line, hint="every row needs a label")
                continue
            uid = row[id_col].strip() if id_col else str(n)
            extras = {k.strip(): (v if v != "" else None) for k, v in row.items() if k not in known}
            yield RawRow(
                id=uid,
                text=row[text_col],
                label=label,
                clip=f"{task.release_name}_{uid}.mp4",
                path=str(path),
                line=line,
                extras=extras,
            )
