"""``mmla data build | sample | info | fetch``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _build(args: argparse.Namespace) -> int:
    import sys

    from mmla.loaders.build import build_dataset

    try:
        stats = build_dataset(args.task, args.source, args.out, videos=args.videos, text_only=args.text_only,
                              skip_bad=args.skip_bad, overwrite=args.overwrite)  # fmt: skip
    except OSError as err:  # permissions, a file where a folder is expected, ...: one line, no traceback
        if isinstance(err, FileNotFoundError):
            raise
        where = f"{err.filename}: " if err.filename else ""
        raise RuntimeError(f"{where}{err.strerror or err} (check the paths and permissions)") from None
    for split, s in stats["splits"].items():
        print(f"{stats['config']}/{split}: {s['num_rows']} rows, {len(s['labels'])} labels")
    if stats["skipped"]:
        print(f"skipped {stats['skipped']} bad rows: see {Path(args.out) / 'skipped.jsonl'}")
    if stats.get("empty_texts"):
        print(f"warning: {stats['empty_texts']} rows have an empty text (kept)", file=sys.stderr)
    print(f"wrote {args.out} (datasets.load_dataset({str(args.out)!r}, {stats['config']!r}))")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from mmla.loaders.sample import HUB_DIRNAME, MANUAL_DIRNAME, write_sample_release

    root = write_sample_release(args.out, tasks=args.tasks, per_class=args.per_class, seed=args.seed,
                                overwrite=args.overwrite)  # fmt: skip
    print(f"release (upstream layout): {root}\nvideos of restricted corpora: {Path(args.out) / MANUAL_DIRNAME}")
    print(f"release (Hub layout: id/text/label TSVs + one clip archive per corpus): {Path(args.out) / HUB_DIRNAME}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from mmla.loaders.tasks import resolve_tasks

    rows = []
    for t in resolve_tasks(args.tasks):
        rows.append({"task": t.key, "dataset": t.dataset, "dimension": t.dimension, "labels": list(t.labels),
                     "splits": dict(t.splits), "video_redistributable": t.video.redistributable,
                     "license": t.license.hub_id, "license_name": t.license.name, "license_url": t.license.url,
                     "license_terms": t.license.terms, "redistribution": t.license.redistribution,
                     "video_terms": t.video.license, "release_dir": t.release_dir})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for r in rows:
            video = "video" if r["video_redistributable"] else "text only (videos: manual)"
            lic = f"other ({r['license_name']})" if r["license"] == "other" else r["license"]
            print(f"{r['task']:17s} {r['dataset']:20s} {r['dimension']:23s} {len(r['labels']):2d} labels  "
                  f"{video:27s} {lic}")  # fmt: skip
    return 0


def _fetch(args: argparse.Namespace) -> int:
    import sys

    from mmla.loaders.fetch import fetch_corpus, restricted_message
    from mmla.loaders.tasks import resolve_tasks

    if args.videos and args.text_only:
        raise ValueError("--videos and --text-only contradict each other: pass one")
    if not getattr(args, "verbose", False):  # one INFO line per HTTP request drowns the result (-v shows them)
        import logging

        for name in ("httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    for t in resolve_tasks(args.tasks):
        if args.videos and not t.video.redistributable:
            print(f"{t.key}: text only. {restricted_message(t)}", file=sys.stderr)
        res = fetch_corpus(t, args.out, text_only=not args.videos, revision=args.revision,
                           keep_archive=args.keep_archive)  # fmt: skip
        video = f"; {res.clips} clips in {res.video_dir}" if res.video_dir else ""
        print(f"{t.key}: {res.folder} (revision {res.revision}{video})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="build, sample, fetch and describe MMLA datasets")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    b = sub.add_parser("build", help="build a dataset repository (Parquet + its datasets YAML) from a source folder",
                       allow_abbrev=False)  # fmt: skip
    b.add_argument("task")
    b.add_argument("--source", required=True, help="MMLA release, LLaMA-Factory JSON or JSONL/CSV folder")
    b.add_argument("--videos", help="folder of clips (required for restricted corpora unless --text-only)")
    b.add_argument("--text-only", action="store_true", help="no video column (config <task>_text)")
    b.add_argument("--skip-bad", action="store_true", help="skip bad rows and write skipped.jsonl instead of failing")
    b.add_argument("--out", required=True, help="new or empty folder, or an earlier build (adds this config)")
    b.add_argument("--overwrite", action="store_true", help="replace this config in an earlier `mmla data build` --out")
    b.set_defaults(func=_build)

    s = sub.add_parser("sample", help="write tiny synthetic releases (upstream and Hub layouts) with real mp4 clips",
                       allow_abbrev=False)  # fmt: skip
    s.add_argument("--out", required=True, help="new or empty folder, or an earlier sample (with --overwrite)")
    s.add_argument("--tasks", default=None, help="'all' (default), a dimension, or t1,t2")
    s.add_argument("--per-class", type=int, default=2)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true", help="replace an earlier `mmla data sample` output in --out")
    s.set_defaults(func=_sample)

    i = sub.add_parser("info", help="list tasks, labels, sizes and licenses", allow_abbrev=False)
    i.add_argument("--tasks", default=None)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_info)

    f = sub.add_parser("fetch", help="download a corpus from THUIAR/MMLA-Datasets (its TSVs; clips with --videos)",
                       allow_abbrev=False)  # fmt: skip
    f.add_argument("tasks")
    f.add_argument("--videos", action="store_true",
                   help="also download and extract the corpus' clip archive (redistributable corpora only)")  # fmt: skip
    f.add_argument("--text-only", action="store_true", help="the default; kept for old scripts")
    f.add_argument("--out", default=None, help="release root to write (default: $MMLA_FETCH_DIR or $HF_HOME/mmla/...)")
    f.add_argument("--revision", default=None, help="branch, tag or commit sha of the Hub repo (default: main)")
    f.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after extracting it")
    f.set_defaults(func=_fetch)
