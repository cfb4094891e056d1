"""``mmla data build``: a source folder -> a dataset repository (Parquet + card) that ``load_dataset`` reads.

Layout of OUT (the same once pushed to ``mmla/<task>``)::

    README.md                                  # card: YAML configs/data_files, dataset_info (ClassLabel), license
    <config>/<split>-00000-of-0000N.parquet    # config = <task> or <task>_text
    skipped.jsonl                              # only with --skip-bad and something skipped

Clip bytes are embedded only for redistributable corpora; restricted ones keep ``clip_id``.
Written into a temp folder next to OUT (with the marker ``.mmla-output.json``) and renamed into place;
OUT is claimed before any work, so a folder that is not an earlier build is never replaced.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import datasets
from datasets.info import DatasetInfosDict
from datasets.table import embed_table_storage
from huggingface_hub import DatasetCard, DatasetCardData

from mmla.loaders.builder import MMLABuilder, config_name, peek_extra_columns, prepare, source_fingerprint
from mmla.loaders.fetch import require_videos
from mmla.loaders.files import (
    OutputDirError,
    claim_output_dir,
    clean_stale_temps,
    make_temp_dir,
    mark_output_dir,
    output_kind,
    replace_dir_atomic,
)
from mmla.loaders.sources import find_source
from mmla.loaders.tasks import MMLA_CITATION, TaskSpec, get_task

MAX_SHARD_BYTES = 500 * 2**20
BUILD_KIND = "mmla data build"


def _size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < bound:
            return name
    return "100K<n<1M"


def write_dataset_card(out: Path, task: TaskSpec, stats: dict[str, Any], *, configs: list[dict],
                       infos: dict[str, datasets.DatasetInfo], default: str) -> Path:  # fmt: skip
    """Write OUT/README.md: YAML (configs, dataset_info, license) and a short body with the statistics.

    Kept small and self-contained so that ``mmla.hub_cards`` can replace it with a richer card.
    """
    for c in configs:
        c.pop("default", None)
        if c["config_name"] == default:
            c["default"] = True
    total = sum(s["num_rows"] for s in stats["splits"].values())
    data = DatasetCardData(
        license=task.license.hub_id,
        **({"license_name": task.license.name, "license_link": task.license.url} if task.license.name else {}),
        language=[task.language],
        pretty_name=f"{task.dataset} ({task.dimension_text}, MMLA)",
        task_categories=["video-classification", "text-classification"],
        size_categories=[_size_category(total)],
        tags=["mmla", "multimodal", task.dimension],
        configs=configs,
    )
    DatasetInfosDict(infos).to_dataset_card_data(data)
    lines = [
        f"# {task.dataset} — {task.dimension_text} (MMLA)",
        "",
        f"{task.dataset} ({task.source}, {task.language}): {len(task.labels)} classes of {task.dimension_text}. "
        f"Built by `mmla data build` from a `{stats['layout']}` source.",
        "",
        f"- Video: {'embedded clips' if stats['video_embedded'] else 'not embedded (column `clip_id` names the clip)'}",
        f"- License: {task.license.display} — {task.license.terms}"
        + (f" ({task.license.url})" if task.license.url else ""),
        f"- Video terms: {task.video.license}"
        + (f" — source: {task.video.source_url}" if task.video.source_url else ""),
        f"- Labels: {', '.join(task.labels)}",
        "",
        "| split | rows | " + " | ".join(task.labels) + " |",
        "|---|---|" + "---|" * len(task.labels),
    ]
    for split, s in stats["splits"].items():
        lines.append(
            f"| {split} | {s['num_rows']} | " + " | ".join(str(s["labels"].get(lb, 0)) for lb in task.labels) + " |"
        )
    if stats.get("skipped"):
        lines += ["", f"{stats['skipped']} bad rows were skipped (see `skipped.jsonl`)."]
    lines += ["", "## Citation", "", "```bibtex", task.citation, "", MMLA_CITATION, "```", ""]
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    path = out / "README.md"
    card.save(path)
    return path


def _existing(out: Path) -> tuple[list[dict], dict[str, datasets.DatasetInfo]]:
    """Configs (and their infos) of a previous build in OUT, to keep when adding another config."""
    readme = out / "README.md"
    if not readme.is_file():
        return [], {}
    meta = DatasetCard.load(readme).data.to_dict()
    infos = DatasetInfosDict.from_dataset_card_data(meta) if meta.get("dataset_info") else {}
    return list(meta.get("configs") or []), dict(infos)


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
        try:
            configs, _ = _existing(out)
        except Exception:  # an unreadable card: treat as a replacement, which needs --overwrite
            configs = [{"config_name": name}]
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
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out.parent, out.name)
    tmp = make_temp_dir(out.parent, f".{out.name}.tmp-")
    try:
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
        dsd = builder.as_dataset()
        configs, infos = _existing(out) if out.is_dir() else ([], {})
        configs = [c for c in configs if c.get("config_name") != name]
        infos.pop(name, None)
        stats: dict[str, Any] = {"task": spec.key, "config": name, "layout": src.layout, "source": str(src.root),
                                 "video_embedded": embed, "splits": {}, "skipped": len(builder.skipped),
                                 "empty_texts": len(builder.empty_texts)}  # fmt: skip
        data_files = []
        split_infos = datasets.SplitDict()
        for split, ds in dsd.items():
            if "video" in ds.column_names and not embed:
                ds = ds.remove_columns("video")
            if embed:
                ds = ds.with_format("arrow").map(embed_table_storage, batched=True, desc=f"embedding {split} clips")
                ds = ds.with_format(None)
            folder = tmp / name
            folder.mkdir(parents=True, exist_ok=True)
            num_shards = max(1, math.ceil((ds.data.nbytes or 1) / MAX_SHARD_BYTES))
            for i in range(num_shards):
                shard = ds.shard(num_shards, i, contiguous=True)
                shard.to_parquet(str(folder / f"{split}-{i:05d}-of-{num_shards:05d}.parquet"))
            data_files.append({"split": split, "path": f"{name}/{split}-*"})
            split_infos.add(datasets.SplitInfo(name=split, num_examples=len(ds), num_bytes=ds.data.nbytes))
            counts = Counter(ds.features["label"].int2str(i) for i in ds["label"])
            stats["splits"][split] = {"num_rows": len(ds), "labels": dict(counts)}
            features = ds.features
        configs.append({"config_name": name, "data_files": data_files})
        infos[name] = datasets.DatasetInfo(features=features, splits=split_infos, config_name=name)
        if builder.skipped:
            with open(tmp / "skipped.jsonl", "w", encoding="utf-8") as fh:
                for rec in builder.skipped:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        if out.is_dir():  # keep the other configs of a previous build (hard links: nothing is re-copied)
            for c in configs:
                if c["config_name"] != name and (out / c["config_name"]).is_dir():
                    _link_tree(out / c["config_name"], tmp / c["config_name"])
        default = (
            name
            if not any(c.get("default") for c in configs if c["config_name"] != name)
            else next(c["config_name"] for c in configs if c.get("default"))
        )
        write_dataset_card(tmp, spec, stats, configs=configs, infos=infos, default=default)
        shutil.rmtree(tmp / ".cache", ignore_errors=True)
        mark_output_dir(tmp, BUILD_KIND)
        replace_dir_atomic(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats
