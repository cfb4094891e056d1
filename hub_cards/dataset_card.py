"""Dataset cards for folders built by ``mmla data build``: the card body, on top of the YAML build wrote.

:mod:`mmla.loaders.build` writes what ``datasets`` and the Hub read (``configs``, ``dataset_info`` with the
``ClassLabel`` names and split sizes, the license fields) and records it, with the statistics of what it
wrote (label counts, embedded clips, shard files), in ``.mmla-build.json``. This module reads that record
(not README.md, which it replaces), keeps the YAML as it is, adds the descriptive metadata (name, languages,
task categories, tags) and writes the body: each corpus' terms from the registry (``TaskSpec.license``),
whether MMLA redistributes its video, its labels and statistics. The Parquet shards are not read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

from mmla.hub_cards.results import check_name, check_repo_id
from mmla.loaders.build import BUILD_INFO, BUILD_KIND, read_build
from mmla.loaders.files import write_text_atomic
from mmla.loaders.tasks import MMLA_CITATION, MMLA_HUB_REPO, TaskSpec, get_task

TEMPLATES = Path(__file__).parent / "templates"
SPLIT_ORDER = ("train", "validation", "test")
MMLA_TAG = "mmla"
"""Tag on every card this package writes; pushes use it to tell our repos from foreign ones."""
BUILD_METADATA = ("configs", "dataset_info", "license", "license_name", "license_link")
"""The YAML keys ``mmla data build`` owns; the card copies them unchanged."""
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
    layout: str | None = None
    """The source layout it was built from (``mmla_release``, ``llamafactory``, ...)."""
    skipped: int = 0
    """Bad rows left out with ``--skip-bad`` (listed in ``skipped.jsonl``)."""

    @property
    def has_video(self) -> bool:
        return "video" in self.features

    @property
    def num_examples(self) -> int:
        return sum(s.num_examples for s in self.splits.values())


@dataclass(frozen=True)
class BuiltDataset(Mapping[str, ConfigStats]):
    """A folder written by ``mmla data build``: its configs (a mapping, in the build's order) and its YAML."""

    folder: Path
    configs: dict[str, ConfigStats]
    metadata: dict[str, Any]
    """The YAML keys build wrote (:data:`BUILD_METADATA`)."""

    def __getitem__(self, name: str) -> ConfigStats:
        return self.configs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.configs)

    def __len__(self) -> int:
        return len(self.configs)


def _rebuild(root: Path, what: str) -> ValueError:
    return ValueError(f"{root}: {what}; build it (again) with `mmla data build`")


def _config_stats(root: Path, entry: dict[str, Any], info: Any, stats: dict[str, Any]) -> ConfigStats:
    name = entry["config_name"]
    try:
        task = get_task(str(stats["task"]))
        data_files = {f["split"]: f["path"] for f in entry["data_files"]}
        splits = {
            split: SplitStats(
                num_examples=info.splits[split].num_examples,
                num_bytes=info.splits[split].num_bytes,
                files=[str(f) for f in s["files"]],
                label_counts={str(k): int(v) for k, v in s["labels"].items()},
                num_videos=s.get("num_videos"),
            )
            for split, s in sorted(stats["splits"].items(), key=lambda kv: SPLIT_ORDER.index(kv[0]))
        }
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise _rebuild(root, f"config {name!r} is incomplete in {BUILD_INFO} ({err!r})") from None
    if set(splits) != set(data_files):
        raise _rebuild(
            root, f"config {name!r} lists splits {sorted(data_files)} but has statistics for {sorted(splits)}"
        )
    return ConfigStats(
        config_name=name,
        task=task,
        features=info.features,
        splits=splits,
        data_files=data_files,
        layout=stats.get("layout"),
        skipped=int(stats.get("skipped") or 0),
    )


def scan_built_dataset(folder: str | os.PathLike[str]) -> BuiltDataset:
    """Read what ``mmla data build`` recorded in ``folder`` (``.mmla-build.json``: its YAML and statistics).

    The shard files are checked against the list build wrote: a missing one, or a Parquet file build did not
    write (which a ``<split>-*`` glob might load), is an error.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; pass the output folder of `mmla data build`")
    meta, stats = read_build(root)
    if not meta.get("configs") or not stats:
        raise _rebuild(root, f"no {BUILD_INFO} (or no configs in it): not written by `{BUILD_KIND}`")
    infos = DatasetInfosDict.from_dataset_card_data(meta) if meta.get("dataset_info") else {}
    configs: dict[str, ConfigStats] = {}
    for entry in meta["configs"]:
        name = entry.get("config_name")
        if name not in stats or name not in infos:
            raise _rebuild(root, f"config {name!r} has no dataset_info or no statistics in {BUILD_INFO}")
        configs[name] = _config_stats(root, entry, infos[name], stats[name])
    listed = {f for c in configs.values() for s in c.splits.values() for f in s.files}
    for file in sorted(root.rglob("*.parquet")):
        rel = file.relative_to(root)
        if not any(part.startswith(".") for part in rel.parts) and rel.as_posix() not in listed:
            raise ValueError(
                f"{file}: not a shard of this build ({BUILD_INFO} does not list it; shard names start with a split "
                f"name: {', '.join(SPLIT_ORDER)}). Remove it, or build the folder again with `mmla data build`"
            )
    missing = sorted(f for f in listed if not (root / f).is_file())
    if missing:
        raise _rebuild(root, f"{missing[0]} is listed in {BUILD_INFO} but missing")
    return BuiltDataset(root, configs, {k: meta[k] for k in BUILD_METADATA if k in meta})


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "1M<n<10M"


def _license_text(task: TaskSpec) -> str:
    lic = task.license
    link = f" ([terms]({lic.url}))" if lic.url else ""
    return (
        f"- **License:** `{lic.display}`{link}. {lic.terms.rstrip('.')}.\n"
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
        lines.append(f"| {t.dataset} | `{lic.display}` | {lic.redistribution} | {video} | {terms} |")
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


def _built_from(stats: ConfigStats) -> str:
    text = f"a `{stats.layout}` source" if stats.layout else "an MMLA source"
    if stats.skipped:
        text += f"; {stats.skipped} bad rows were skipped (listed in `skipped.jsonl` of the build)"
    return text


def dataset_card(
    stats: BuiltDataset,
    *,
    repo_id: str | None = None,
    pretty_name: str | None = None,
) -> DatasetCard:
    """The card of a built dataset (one config per task), from :func:`scan_built_dataset`'s result.

    The YAML build wrote (configs, dataset_info, license) is kept as it is; the descriptive metadata and
    the body are added here.
    """
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
    if pretty_name is None:
        pretty_name = f"{tasks[0].dataset} (MMLA)" if single else "MMLA: multimodal language analysis"
    card_data = DatasetCardData(
        pretty_name=pretty_name,
        language=sorted({t.language for t in tasks}),
        task_categories=(["video-classification"] if has_video else []) + ["text-classification"],
        task_ids=list(dict.fromkeys(i for t in tasks for i in t.hub_task_ids)),
        size_categories=[size_category(sum(c.num_examples for c in configs))],
        source_datasets=["original"],
        tags=[MMLA_TAG, "multimodal", "conversation", *sorted({t.dimension.replace("_", "-") for t in tasks})],
        **stats.metadata,
    )
    sections = [
        {
            "config": c.config_name,
            "task": c.task,
            "has_video": c.has_video,
            "dimension": c.task.dimension_text,
            "sizes": ", ".join(f"{s}: {st.num_examples}" for s, st in c.splits.items()),
            "paper_sizes": ", ".join(f"{s}: {n:,}" for s, n in c.task.splits.items()),
            "built_from": _built_from(c),
            "labels_table": _label_table(c),
            "video": _video_text(c),
            "license": _license_text(c.task),
            "features": ", ".join(f"`{name}`" for name in c.features),
            "load_args": f'"{repo_id}"' + ("" if single else f', "{c.config_name}"'),
        }
        for c in configs
    ]
    return DatasetCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "dataset_card.md"),
        pretty_name=pretty_name,
        repo_id=repo_id,
        sections=sections,
        single=single,
        citations=[MMLA_CITATION, *dict.fromkeys(t.citation for t in tasks)],
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
    """Read a built folder and write its card atomically (to ``out``, default ``folder/README.md``)."""
    root = Path(folder)
    card = dataset_card(scan_built_dataset(root), repo_id=repo_id, pretty_name=pretty_name)
    return write_text_atomic(Path(out) if out is not None else root / "README.md", str(card))
