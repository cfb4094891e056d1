"""``mmla data build``: a source folder -> a dataset repository (Parquet + YAML) that ``load_dataset`` reads.

Layout of OUT (the same once pushed to ``mmla/<task>``)::

    README.md                                  # YAML: configs/data_files, dataset_info (ClassLabel), license
    .mmla-build.json                           # that YAML, and per config and split: label counts, clips, shards
    <config>/<split>-00000-of-0000N.parquet    # config = <task> or <task>_text
    skipped.jsonl                              # only with --skip-bad and something skipped

This module is the one writer of the metadata that ``datasets`` and the Hub read (the YAML). It records that
YAML and the statistics of what it wrote in ``.mmla-build.json``, which :mod:`mmla.hub_cards.dataset_card`
reads to write the card (the YAML kept as it is, plus a body), so the Parquet shards are never scanned again
and a card may replace README.md. Clip bytes are embedded only for redistributable corpora; restricted
ones keep ``clip_id``. Written into a temp folder next to OUT (with the marker ``.mmla-output.json``) and
renamed into place; OUT is claimed before any work, so a folder that is not an earlier build is never
replaced. The other configs of an earlier build are hard-linked into the new one, never re-copied.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets
import pyarrow.compute as pc
from datasets.info import DatasetInfosDict
from datasets.table import embed_table_storage
from huggingface_hub import DatasetCard, DatasetCardData

from mmla.loaders.builder import MMLABuilder, config_name, peek_extra_columns, prepare, source_fingerprint
from mmla.loaders.fetch import require_videos
from mmla.loaders.files import OutputDirError, claim_output_dir, output_kind, read_json, staged_dir, write_json_atomic
from mmla.loaders.sources import find_source
from mmla.loaders.tasks import TASKS, TaskSpec, get_task

MAX_SHARD_BYTES = 500 * 2**20
BUILD_KIND = "mmla data build"
BUILD_INFO = ".mmla-build.json"
"""Statistics of a build (per config and split), read by the dataset card instead of the Parquet shards."""
BUILD_INFO_FORMAT = 1
PER_CORPUS_LICENSE = "mmla-per-corpus-terms"
"""``license_name`` of a multi-corpus build whose corpora have several custom terms (each listed by the card)."""


def license_metadata(tasks: Iterable[TaskSpec]) -> dict[str, Any]:
    """The YAML ``license`` (one Hub id, or a list for several corpora) and, for ``other``, its name and link."""
    licenses = list(dict.fromkeys(t.license for t in tasks))
    ids = list(dict.fromkeys(lic.hub_id for lic in licenses))
    meta: dict[str, Any] = {"license": ids[0] if len(ids) == 1 else ids}
    custom = [lic for lic in licenses if lic.hub_id == "other"]
    if len({(lic.name, lic.url) for lic in custom}) == 1:
        meta["license_name"], meta["license_link"] = custom[0].name, custom[0].url
    elif custom:  # several custom terms: the card body lists each corpus' terms
        meta["license_name"], meta["license_link"] = PER_CORPUS_LICENSE, "README.md"
    return {k: v for k, v in meta.items() if v is not None}


def read_build(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """What ``mmla data build`` recorded in ``folder``: the YAML metadata it wrote into README.md (configs,
    dataset_info, license fields) and the statistics of each config; empty when ``folder`` has no record.

    The record (:data:`BUILD_INFO`) is read, not README.md, which a dataset card or the user may replace.
    """
    path = folder / BUILD_INFO
    if not path.is_file():
        return {}, {}
    info = read_json(path)
    if (
        not isinstance(info, dict)
        or not isinstance(info.get("metadata"), dict)
        or not isinstance(info.get("configs"), dict)
    ):
        raise ValueError(f"{path}: no 'metadata' and 'configs' objects; build the folder again with `mmla data build`")
    return dict(info["metadata"]), dict(info["configs"])


def _count_videos(ds: datasets.Dataset) -> int:
    """Rows whose clip bytes are embedded (a row without a clip has a null ``video``)."""
    return int(pc.count(pc.struct_field(ds.with_format("arrow")["video"], "bytes")).as_py())


def save_config(
    folder: str | os.PathLike[str],
    task: TaskSpec,
    name: str,
    splits: datasets.DatasetDict,
    *,
    embed: bool,
    previous: str | os.PathLike[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write config ``name`` (one shard set per split) into ``folder``, then the build's YAML and statistics.

    The other configs of the build in ``previous`` (default: ``folder`` itself) are kept: their YAML and
    statistics are carried over and, when ``previous`` is another folder, their shards are hard-linked.
    ``embed`` puts the clip bytes into the shards; without it any ``video`` column is dropped. Returns this
    config's statistics (``extra`` is added to them).
    """
    folder = Path(folder)
    previous = folder if previous is None else Path(previous)
    meta, stats_all = read_build(previous) if previous.is_dir() else ({}, {})
    configs = [c for c in meta.get("configs") or [] if c.get("config_name") != name]
    infos = dict(DatasetInfosDict.from_dataset_card_data(meta)) if meta.get("dataset_info") else {}
    infos.pop(name, None)
    stats_all.pop(name, None)
    unknown = [c["config_name"] for c in configs if c["config_name"] not in stats_all]
    if unknown:
        raise ValueError(f"{previous / BUILD_INFO}: config(s) {', '.join(unknown)} have no statistics; build the "
                         "folder again with `mmla data build`")  # fmt: skip
    if previous.resolve() != folder.resolve():  # hard links: nothing is re-copied
        for c in configs:
            if (previous / c["config_name"]).is_dir():
                _link_tree(previous / c["config_name"], folder / c["config_name"])
    shard_dir = folder / name
    shutil.rmtree(shard_dir, ignore_errors=True)
    shard_dir.mkdir(parents=True)
    stats: dict[str, Any] = {"task": task.key, **(extra or {}), "video_embedded": embed, "splits": {}}
    data_files, split_infos = [], datasets.SplitDict()
    features = None
    for split, ds in splits.items():
        if "video" in ds.column_names and not embed:
            ds = ds.remove_columns("video")
        if embed:
            ds = ds.with_format("arrow").map(embed_table_storage, batched=True, desc=f"embedding {split} clips")
            ds = ds.with_format(None)
        num_shards = max(1, math.ceil((ds.data.nbytes or 1) / MAX_SHARD_BYTES))
        files = [f"{name}/{split}-{i:05d}-of-{num_shards:05d}.parquet" for i in range(num_shards)]
        for i, file in enumerate(files):
            ds.shard(num_shards, i, contiguous=True).to_parquet(str(folder / file))
        data_files.append({"split": split, "path": f"{name}/{split}-*"})
        split_infos.add(datasets.SplitInfo(name=split, num_examples=len(ds), num_bytes=ds.data.nbytes))
        counts = Counter(ds.features["label"].int2str(i) for i in ds["label"])
        stats["splits"][split] = {
            "num_rows": len(ds),
            "labels": {label: counts[label] for label in task.labels if counts[label]},
            "num_videos": _count_videos(ds) if "video" in ds.column_names else None,
            "files": files,
        }
        features = ds.features
    configs.append({"config_name": name, "data_files": data_files})
    infos[name] = datasets.DatasetInfo(
        features=features,
        splits=split_infos,
        config_name=name,
        dataset_size=sum(s.num_bytes for s in split_infos.values()),
    )
    stats_all[name] = stats
    _write_metadata(folder, configs, infos, stats_all)
    return stats


def _write_metadata(folder: Path, configs: list[dict], infos: dict[str, datasets.DatasetInfo],
                    stats: dict[str, dict[str, Any]]) -> None:  # fmt: skip
    """README.md (the YAML ``datasets`` and the Hub read: configs, dataset_info, license) and BUILD_INFO."""
    # the default config stays what it was: the flagged one, or else the one built first
    default = next((c["config_name"] for c in configs if c.get("default")), configs[0]["config_name"])
    order = list(TASKS)
    configs = sorted(configs, key=lambda c: (order.index(stats[c["config_name"]]["task"]), c["config_name"]))
    for c in configs:
        c.pop("default", None)
        if c["config_name"] == default and len(configs) > 1:
            c["default"] = True
    tasks = [get_task(stats[c["config_name"]]["task"]) for c in configs]
    data = DatasetCardData(**license_metadata(tasks), configs=configs)
    DatasetInfosDict({c["config_name"]: infos[c["config_name"]] for c in configs}).to_dataset_card_data(data)
    body = (
        "Parquet shards written by `mmla data build`, one config per task: "
        + ", ".join(f"`{c['config_name']}`" for c in configs)
        + ".\nLoad one with `datasets.load_dataset(<this folder>, <config>)`. `mmla card dataset <this folder>` "
        "writes the full card (each corpus' terms, labels and statistics), and `mmla push dataset` pushes it.\n"
    )
    DatasetCard(f"---\n{data.to_yaml()}\n---\n\n# MMLA dataset build\n\n{body}").save(folder / "README.md")
    record = {
        "format": BUILD_INFO_FORMAT,
        "metadata": data.to_dict(),
        "configs": {c["config_name"]: stats[c["config_name"]] for c in configs},
    }
    write_json_atomic(folder / BUILD_INFO, record)


def _link_tree(src: Path, dst: Path) -> None:
    """Carry a finished config folder into the new build: hard links (no bytes copied), a copy where links fail."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link)


def _claim(out: Path, name: str, *, overwrite: bool, protected: tuple[Any, ...]) -> Path:
    """Claim OUT before any work: a new/empty folder, or an earlier build (adding a config; replacing one only
    with ``overwrite``). Never a folder of user files, an input folder, or an unwritable place."""
    adding = False
    if output_kind(out) == BUILD_KIND:
        if not (out / BUILD_INFO).is_file():
            raise OutputDirError(f"--out {out}: built by an older mmla (no {BUILD_INFO}), so its configs cannot be "
                                 "kept; build into a new --out folder, or remove this one first")  # fmt: skip
        configs = read_build(out)[0].get("configs") or []
        adding = name not in {c.get("config_name") for c in configs} and not (out / name).exists()
    out = claim_output_dir(out, BUILD_KIND, overwrite=overwrite, resume=adding, protected=protected)
    parent = out.parent if out.parent.exists() else next((p for p in out.parents if p.exists()), out.parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputDirError(f"--out {out}: its folder {parent} is not writable (the build is written next to "
                             f"OUT, then renamed). Choose a folder you can write to")  # fmt: skip
    return out


def build_dataset(
    task: str | TaskSpec,
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    videos: str | os.PathLike | None = None,
    text_only: bool = False,
    skip_bad: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build ``task`` from ``source`` into the dataset repository ``out``; return the statistics.

    ``out`` is claimed first (:func:`mmla.loaders.files.claim_output_dir`): a new or empty folder, or an
    earlier build of ours (another config is added to it; the same config is replaced only with
    ``overwrite``). A folder with other files, or one that contains ``source`` or ``videos``, is refused
    before anything is read or written.
    """
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    name = config_name(spec, text_only)
    out = _claim(Path(out).expanduser(), name, overwrite=overwrite, protected=(source, videos))
    embed = spec.video.redistributable and not text_only
    with_video = not text_only and (spec.video.redistributable or videos is not None)
    if not text_only and not spec.video.redistributable:
        require_videos(spec, videos, text_only=False)
    src = find_source(source, spec)
    with staged_dir(out, BUILD_KIND) as tmp:
        builder = MMLABuilder(
            config_name=config_name(spec, not with_video),
            data_dir=str(src.root),
            cache_dir=str(tmp / ".cache"),
            videos_dir=str(Path(videos).expanduser().resolve()) if videos and with_video else None,
            skip_bad=skip_bad,
            extra_columns=",".join(peek_extra_columns(src, spec)),
            fingerprint=source_fingerprint(src, videos),
        )
        prepare(builder)
        extra = {"layout": src.layout, "skipped": len(builder.skipped), "empty_texts": len(builder.empty_texts)}
        stats = save_config(tmp, spec, name, builder.as_dataset(), embed=embed, previous=out, extra=extra)
        if builder.skipped:
            with open(tmp / "skipped.jsonl", "w", encoding="utf-8") as fh:
                for rec in builder.skipped:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        shutil.rmtree(tmp / ".cache", ignore_errors=True)
    return {"config": name, "source": str(src.root), **stats}
