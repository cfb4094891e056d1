"""Dataset cards for folders built by ``mmla data build`` (Parquet shards per config and split).

The YAML is what the Hub and ``datasets`` read: ``configs`` (data files per split) and
``dataset_info`` (features with the ``ClassLabel`` names, split sizes) are written by
``datasets``' own serializers, so ``load_dataset(folder)`` and ``load_dataset("org/name")``
see exactly the layout that was built. Licenses come from the registry (``TaskSpec.license``):
the Hub id, or ``other`` with the owners' slug and terms URL, and the body states each corpus'
terms and whether MMLA redistributes its video.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datasets import ClassLabel, DatasetInfo, Features, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from mmla.hub_cards.results import check_name, check_repo_id
from mmla.loaders.files import write_text_atomic
from mmla.loaders.tasks import MMLA_CITATION, MMLA_HUB_REPO, TASKS, License, TaskSpec, get_task

TEMPLATES = Path(__file__).parent / "templates"
SPLIT_ORDER = ("train", "validation", "test")
MMLA_TAG = "mmla"
"""Tag on every card this package writes; pushes use it to tell our repos from foreign ones."""
PER_CORPUS_LICENSE = "mmla-per-corpus-terms"
"""``license_name`` of a multi-corpus card whose corpora have several custom terms (listed in the card body)."""
REDISTRIBUTION_TEXT = {
    "open": "granted by the license.",
    "unclear": "not settled: the owners publish no license file. Check their terms before you share this data.",
    "restricted": "not granted by the owners' terms. Share this data only as those terms allow.",
}


@dataclass
class SplitStats:
    num_examples: int
    num_bytes: int
    files: list[str]
    label_counts: dict[str, int] = field(default_factory=dict)
    num_videos: int | None = None
    """Rows whose video bytes are embedded (None: no video column)."""


@dataclass
class ConfigStats:
    """What a card needs to know about one config (one task) of a built folder."""

    config_name: str
    task: TaskSpec
    features: Features
    splits: dict[str, SplitStats]
    data_files: dict[str, str]
    """split -> glob relative to the folder root (``mintrec/train-*``)."""

    @property
    def has_video(self) -> bool:
        return "video" in self.features

    @property
    def num_examples(self) -> int:
        return sum(s.num_examples for s in self.splits.values())


def _split_of(rel: Path) -> tuple[str, str, str] | None:
    """(config dir, split, data_files glob) for a shard path, following datasets' naming conventions."""
    parts = rel.parts
    stem_split = rel.name.split("-", 1)[0].split(".", 1)[0]
    if len(parts) >= 2 and parts[-2] in SPLIT_ORDER:  # <config>/<split>/*.parquet
        config_dir = "/".join(parts[:-2])
        prefix = f"{config_dir}/" if config_dir else ""
        return config_dir, parts[-2], f"{prefix}{parts[-2]}/*.parquet"
    if stem_split in SPLIT_ORDER:  # <config>/<split>-00000-of-00001.parquet
        config_dir = "/".join(parts[:-1])
        prefix = f"{config_dir}/" if config_dir else ""
        return config_dir, stem_split, f"{prefix}{stem_split}-*"
    return None


def _task_of(config_dir: str, first_file: Path) -> TaskSpec:
    table = pq.read_table(first_file, columns=None).slice(0, 1)
    if "task" in table.column_names and table.num_rows:
        return get_task(str(table.column("task")[0].as_py()))
    name = Path(config_dir).name
    if name in TASKS:
        return TASKS[name]
    raise ValueError(
        f"{first_file}: cannot tell which MMLA task this shard belongs to (no `task` column and folder "
        f"{config_dir!r} is not a task key). Rebuild it with `mmla data build`."
    )


def _video_count(files: list[Path]) -> int | None:
    """Embedded videos, from Parquet column statistics (no bytes are read)."""
    total = 0
    for file in files:
        meta = pq.ParquetFile(file).metadata
        idx = next(
            (i for i in range(meta.num_columns) if meta.row_group(0).column(i).path_in_schema == "video.bytes"), None
        )
        if idx is None:
            return None
        for g in range(meta.num_row_groups):
            col = meta.row_group(g).column(idx)
            stats = col.statistics
            if stats is None or not stats.has_null_count:
                return None
            total += meta.row_group(g).num_rows - stats.null_count
    return total


def scan_built_dataset(folder: str | os.PathLike[str]) -> dict[str, ConfigStats]:
    """Find the configs, splits, features and label counts of a built dataset folder."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; pass the output folder of `mmla data build`")
    groups: dict[str, dict[str, tuple[str, list[Path]]]] = {}
    for file in sorted(root.rglob("*.parquet")):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        found = _split_of(rel)
        if found is None:
            raise ValueError(
                f"{file}: shard name does not start with a split name ({', '.join(SPLIT_ORDER)}); "
                "expected <config>/<split>-NNNNN-of-NNNNN.parquet as `mmla data build` writes"
            )
        config_dir, split, pattern = found
        groups.setdefault(config_dir, {}).setdefault(split, (pattern, []))[1].append(file)
    if not groups:
        raise ValueError(f"{root}: no Parquet shards found; build the dataset first with `mmla data build`")
    out: dict[str, ConfigStats] = {}
    for config_dir, splits in groups.items():
        first = next(iter(splits.values()))[1][0]
        task = _task_of(config_dir, first)
        config_name = Path(config_dir).name if config_dir and config_dir != "data" else "default"
        if config_name in out:
            raise ValueError(f"{root}: two shard folders map to config {config_name!r}; keep one folder per task")
        features = Features.from_arrow_schema(pq.read_schema(first))
        if "label" in features and not isinstance(features["label"], ClassLabel):
            features["label"] = ClassLabel(names=list(task.labels))
        split_stats: dict[str, SplitStats] = {}
        for split in sorted(splits, key=lambda s: SPLIT_ORDER.index(s)):
            pattern, files = splits[split]
            metas = [pq.ParquetFile(f).metadata for f in files]
            counts: Counter[str] = Counter()
            if "label" in features:
                names = features["label"].names
                for f in files:
                    for value in pq.read_table(f, columns=["label"]).column("label").to_pylist():
                        counts[names[value] if isinstance(value, int) else str(value)] += 1
            split_stats[split] = SplitStats(
                num_examples=sum(m.num_rows for m in metas),
                num_bytes=sum(m.row_group(g).total_byte_size for m in metas for g in range(m.num_row_groups)),
                files=[f.relative_to(root).as_posix() for f in files],
                label_counts=dict(counts),
                num_videos=_video_count(files) if "video" in features else None,
            )
        out[config_name] = ConfigStats(
            config_name=config_name,
            task=task,
            features=features,
            splits=split_stats,
            data_files={s: splits[s][0] for s in split_stats},
        )
    return dict(sorted(out.items(), key=lambda kv: list(TASKS).index(kv[1].task.key)))


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "1M<n<10M"


def license_label(lic: License) -> str:
    """``mit`` / ``other (mintrec-research)``: the id a reader looks up on the Hub."""
    return f"other ({lic.name})" if lic.hub_id == "other" else lic.hub_id


def license_metadata(tasks: list[TaskSpec]) -> dict[str, Any]:
    """The card's ``license`` (one id, or a list for several corpora) and, for ``other``, its name and link."""
    licenses = list(dict.fromkeys(t.license for t in tasks))
    ids = list(dict.fromkeys(lic.hub_id for lic in licenses))
    meta: dict[str, Any] = {"license": ids[0] if len(ids) == 1 else ids}
    custom = [lic for lic in licenses if lic.hub_id == "other"]
    if len({(lic.name, lic.url) for lic in custom}) == 1:
        meta["license_name"], meta["license_link"] = custom[0].name, custom[0].url
    elif custom:  # several custom terms: the card body lists each corpus' terms
        meta["license_name"], meta["license_link"] = PER_CORPUS_LICENSE, "README.md"
    return {k: v for k, v in meta.items() if v is not None}


def _license_text(task: TaskSpec) -> str:
    lic = task.license
    link = f" ([terms]({lic.url}))" if lic.url else ""
    return (
        f"- **License:** `{license_label(lic)}`{link}. {lic.terms.rstrip('.')}.\n"
        f"- **Redistribution:** {REDISTRIBUTION_TEXT.get(lic.redistribution, lic.redistribution)}\n"
        f"- **Video in the MMLA release:** "
        + (
            f"yes, MMLA's release `{MMLA_HUB_REPO}` redistributes this corpus' clips."
            if task.video.redistributable
            else "no, MMLA does not redistribute this corpus' video."
        )
    )


def _license_table(tasks: list[TaskSpec]) -> str:
    lines = ["| corpus | license | redistribution | MMLA ships video | terms |", "|---|---|---|---|---|"]
    for t in dict.fromkeys(tasks):
        lic = t.license
        terms = f"[{lic.url}]({lic.url})" if lic.url else "—"
        video = "yes" if t.video.redistributable else "no"
        lines.append(f"| {t.dataset} | `{license_label(lic)}` | {lic.redistribution} | {video} | {terms} |")
    return "\n".join(lines)


def _label_table(stats: ConfigStats) -> str:
    splits = list(stats.splits)
    head = "| id | label | " + " | ".join(splits) + " |\n|---:|---|" + "---:|" * len(splits)
    rows = [
        f"| {i} | {label} | " + " | ".join(str(stats.splits[s].label_counts.get(label, 0)) for s in splits) + " |"
        for i, label in enumerate(stats.task.labels)
    ]
    return "\n".join([head, *rows])


def _video_text(stats: ConfigStats) -> str:
    task = stats.task
    policy = task.video
    embedded = [s.num_videos for s in stats.splits.values()]
    count = sum(v for v in embedded if v is not None) if all(v is not None for v in embedded) else None
    if stats.has_video and policy.redistributable:
        extra = f" ({count} of {stats.num_examples} rows have their clip embedded)" if count is not None else ""
        return f"Video clips are included in the `video` column{extra}, under the license above."
    if stats.has_video and count != 0:
        return (
            f"**This build embeds {task.dataset} clips, which MMLA does not redistribute.** Keep it private, or "
            "share it only as the owners' terms allow."
        )
    where = f" from {policy.source_url}" if policy.source_url else ""
    if policy.redistributable:
        return (
            f"**Videos are not included** in this build (text only). MMLA's release `{MMLA_HUB_REPO}` "
            f"redistributes the clips: `mmla data fetch {task.key} --videos`."
        )
    lines = [
        f"**Videos are not included.** MMLA does not redistribute {task.dataset} videos; this repository holds "
        f"the transcripts and labels only. Obtain the videos{where} under the owners' terms."
    ]
    if policy.instructions:
        lines.append(f"\n\n{policy.instructions}")
    lines.append(
        "\n\nThen load them with `mmla.loaders.load_task(task, videos=<manual_dir>)` so the clips are matched "
        "to the rows by id."
    )
    return "".join(lines)


def dataset_card(
    stats: Mapping[str, ConfigStats],
    *,
    repo_id: str | None = None,
    pretty_name: str | None = None,
) -> DatasetCard:
    """Build the card of a built dataset (one config per task) from :func:`scan_built_dataset`'s stats."""
    if not stats:
        raise ValueError("no configs to describe; pass the stats of a built dataset folder")
    if repo_id is not None:
        check_repo_id(repo_id)
    if pretty_name is not None:
        check_name(pretty_name, "--pretty-name")
    configs = list(stats.values())
    tasks = [c.task for c in configs]
    single = len(configs) == 1
    if repo_id is None:
        repo_id = f"mmla/{tasks[0].key}" if single else "mmla/mmla"
    has_video = any(c.has_video for c in configs)
    total = sum(c.num_examples for c in configs)
    if pretty_name is None:
        pretty_name = f"{tasks[0].dataset} (MMLA)" if single else "MMLA: multimodal language analysis"
    task_ids = ["multi-class-classification"]
    if any(t.dimension == "intent" for t in tasks):
        task_ids.append("intent-classification")
    if any(t.dimension == "sentiment" for t in tasks):
        task_ids.append("sentiment-classification")
    card_data = DatasetCardData(
        pretty_name=pretty_name,
        **license_metadata(tasks),
        language=sorted({t.language for t in tasks}),
        task_categories=(["video-classification"] if has_video else []) + ["text-classification"],
        task_ids=task_ids,
        size_categories=[size_category(total)],
        source_datasets=["original"],
        tags=[MMLA_TAG, "multimodal", "conversation", *sorted({t.dimension.replace("_", "-") for t in tasks})],
    )
    MetadataConfigs(
        {
            c.config_name: {
                "data_files": [{"split": s, "path": p} for s, p in c.data_files.items()],
                **({"default": True} if i == 0 and not single and c.config_name != "default" else {}),
            }
            for i, c in enumerate(configs)
        }
    ).to_dataset_card_data(card_data)
    DatasetInfosDict(
        {
            c.config_name: DatasetInfo(
                features=c.features,
                splits=SplitDict(
                    {
                        s: SplitInfo(name=s, num_bytes=st.num_bytes, num_examples=st.num_examples)
                        for s, st in c.splits.items()
                    }
                ),
                dataset_size=sum(st.num_bytes for st in c.splits.values()),
            )
            for c in configs
        }
    ).to_dataset_card_data(card_data)
    sections: list[dict[str, Any]] = []
    for c in configs:
        t = c.task
        sizes = ", ".join(f"{s}: {st.num_examples}" for s, st in c.splits.items())
        sections.append(
            {
                "config": c.config_name,
                "task": t,
                "has_video": c.has_video,
                "dimension": t.dimension_text,
                "sizes": sizes,
                "paper_sizes": ", ".join(f"{s}: {n:,}" for s, n in t.splits.items()),
                "labels_table": _label_table(c),
                "video": _video_text(c),
                "license": _license_text(t),
                "features": ", ".join(f"`{name}`" for name in c.features),
                "load_args": f'"{repo_id}"' + ("" if single else f', "{c.config_name}"'),
            }
        )
    citations = [MMLA_CITATION, *dict.fromkeys(t.citation for t in tasks)]
    return DatasetCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "dataset_card.md"),
        pretty_name=pretty_name,
        repo_id=repo_id,
        sections=sections,
        single=single,
        citations=citations,
        mmla_repo=MMLA_HUB_REPO,
        license_table=_license_table(tasks),
    )


def write_dataset_card(
    folder: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    pretty_name: str | None = None,
) -> Path:
    """Scan a built folder and write its card atomically (to ``out``, default ``folder/README.md``)."""
    root = Path(folder)
    card = dataset_card(scan_built_dataset(root), repo_id=repo_id, pretty_name=pretty_name)
    return write_text_atomic(Path(out) if out is not None else root / "README.md", str(card))
