"""``mmla push``, ``mmla card`` and ``mmla leaderboard``.

Local outputs are claimed first (:func:`mmla.loaders.files.claim_output_dir`): a card or leaderboard is
written into a new or empty folder, or over an earlier output of the same command with ``--overwrite``;
a user's folder is never written into. Options are never abbreviated (``allow_abbrev=False``).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path


def _hub_options(p: argparse.ArgumentParser, *, private: bool = True) -> None:
    p.add_argument("--repo-id", required=True, help="target repository, org/name")
    if private:
        p.add_argument("--private", action="store_true", default=None, help="create the repo as private")
    p.add_argument("--revision", default=None, help="branch to commit to (created if missing)")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing directly")
    p.add_argument(
        "--token",
        default=None,
        help="Hub token with write access (default: HF_TOKEN or the `hf auth login` token; prefer those, "
        "a token on the command line is visible to other users of the machine)",
    )
    p.add_argument("--force", action="store_true", help="commit even if the repo holds content not written by mmla")
    p.add_argument("--commit-message", default=None)
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help="retries on network/server errors (default 3); the commit is repeated only if it did not land",
    )


def _paper_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--with-paper", dest="with_paper", action="store_true", default=True, help="show the paper's rows (default)"
    )
    group.add_argument("--no-paper", dest="with_paper", action="store_false", help="leave the paper's rows out")


def _rerun(args: argparse.Namespace) -> str:
    """The command line to rerun, without the token."""
    argv = sys.argv[1:] if sys.argv and Path(sys.argv[0]).name in {"mmla", "__main__.py", "cli.py"} else []
    clean: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == "--token":
            skip = True
            continue
        if item.startswith("--token="):
            continue
        clean.append(item)
    if not clean:
        return f"the same `mmla push {args.push_command}` command"
    return "mmla " + shlex.join(clean)


def _common(args: argparse.Namespace) -> dict:
    """``options=``: the flags every ``mmla push`` command shares, as :class:`~mmla.hub_cards.push.HubOptions`."""
    from mmla.hub_cards.push import HubOptions

    if not getattr(args, "verbose", False):  # one line per request at INFO otherwise (-v shows them)
        for name in ("httpx2", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)
    flags = ("token", "revision", "create_pr", "force", "commit_message", "retries")  # dest = field name
    return {"options": HubOptions(**{name: getattr(args, name) for name in flags}, rerun=_rerun(args))}


def _report(result) -> int:
    print(f"pushed {len(result.files)} file(s) to {result.repo_type} repo {result.repo_id}: {result.commit_url}")
    if result.pr_url:
        print(f"pull request: {result.pr_url}")
    return 0


def _push_dataset(args: argparse.Namespace) -> int:
    from mmla.hub_cards.push import push_dataset

    result = push_dataset(
        args.folder, args.repo_id, private=args.private, rights_acknowledged=args.rights_acknowledged, **_common(args)
    )
    return _report(result)


def _push_model(args: argparse.Namespace) -> int:
    from mmla.hub_cards.push import push_model

    result = push_model(
        args.folder,
        args.repo_id,
        results=args.results or (),
        private=args.private,
        license=args.license,
        eval_results_yaml=args.eval_results_yaml,
        **_common(args),
    )
    return _report(result)


def _push_results(args: argparse.Namespace) -> int:
    from mmla.hub_cards.push import push_results

    result = push_results(
        args.results,
        args.repo_id,
        allow_mixed=args.allow_mixed,
        eval_results_yaml=args.eval_results_yaml,
        **_common(args),
    )
    return _report(result)


CARD_KIND = "mmla card"
LEADERBOARD_KIND = "mmla leaderboard"
BUILD_KIND = "mmla data build"


def _claim(out: str, kind: str, *, overwrite: bool, protected: list[str]) -> Path:
    """The ``--out`` folder, checked before any work: new, empty, or an earlier ``kind`` output."""
    from mmla.loaders.files import claim_output_dir

    if Path(out).suffix.lower() in {".md", ".png", ".json"}:
        raise ValueError(
            f"--out {out} looks like a file name; --out is a folder (the files are written inside it). "
            "Pass a new or empty folder"
        )
    return claim_output_dir(out, kind, overwrite=overwrite, protected=protected)


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """Default outputs beside an input: replace an earlier file only with ``--overwrite``."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise ValueError(
            f"{existing[0]} already exists; pass --overwrite to replace it, or --out DIR to write into a new folder"
        )
    for path in existing:
        if not path.is_file():
            raise ValueError(f"{path} exists and is not a file; pass --out DIR to write into a new folder")


def _run_dir(result: str) -> Path:
    path = Path(result)
    return path if path.is_dir() else path.parent


def _card_dataset(args: argparse.Namespace) -> int:
    from mmla.hub_cards.dataset_card import write_dataset_card
    from mmla.loaders.files import mark_output_dir, output_kind

    folder = Path(args.folder)
    if args.out:
        out = _claim(args.out, CARD_KIND, overwrite=args.overwrite, protected=[args.folder])
        path = write_dataset_card(folder, out=out / "README.md", repo_id=args.repo_id, pretty_name=args.pretty_name)
        mark_output_dir(out, CARD_KIND)
    else:
        readme = folder / "README.md"
        if folder.is_dir() and output_kind(folder) != BUILD_KIND and readme.exists():
            raise ValueError(
                f"{readme} exists and {folder} is not an `{BUILD_KIND}` output (no marker), so its README is not "
                "replaced. Pass --out DIR to write the card into a new folder"
            )
        path = write_dataset_card(folder, repo_id=args.repo_id, pretty_name=args.pretty_name)
    print(f"wrote {path}")
    return 0


def _card_model(args: argparse.Namespace) -> int:
    from mmla.hub_cards.model_card import write_model_card
    from mmla.loaders.files import mark_output_dir

    if args.out:
        out_dir = _claim(args.out, CARD_KIND, overwrite=args.overwrite, protected=[*args.results, args.adapter])
        out = out_dir / "README.md"
    else:
        out_dir = None
        out = _run_dir(args.results[0]) / "MODEL_CARD.md"
        _refuse_existing([out], args.overwrite)
    path = write_model_card(
        out,
        args.results,
        adapter_dir=args.adapter,
        repo_id=args.repo_id,
        license=args.license,
        allow_mixed=args.allow_mixed,
        with_paper=args.with_paper,
    )
    if out_dir is not None:
        mark_output_dir(out_dir, CARD_KIND)
    print(f"wrote {path}")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from mmla.hub_cards.leaderboard import write_leaderboard
    from mmla.loaders.files import mark_output_dir

    if args.out:
        out = _claim(args.out, LEADERBOARD_KIND, overwrite=args.overwrite, protected=args.results)
    else:
        out = _run_dir(args.results[0])
        _refuse_existing([out / "leaderboard.md", out / "leaderboard.png"], args.overwrite)
    paths = write_leaderboard(args.results, out, with_paper=args.with_paper, allow_mixed=args.allow_mixed)
    if args.out:
        mark_output_dir(out, LEADERBOARD_KIND)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def _overwrite_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--overwrite", action="store_true", help=f"replace an earlier {what} (never a folder mmla did not write)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    push = subparsers.add_parser(
        "push", help="publish a built dataset, an adapter or results to the Hugging Face Hub", allow_abbrev=False
    )
    sub = push.add_subparsers(dest="push_command", metavar="WHAT", required=True)

    d = sub.add_parser(
        "dataset", help="push a folder built by `mmla data build` (Parquet + generated card)", allow_abbrev=False
    )
    d.add_argument("folder", help="output folder of `mmla data build`")
    _hub_options(d)
    d.add_argument(
        "--i-have-the-right-to-share",
        dest="rights_acknowledged",
        action="store_true",
        help="publish corpora whose terms do not clearly allow redistribution to a public repo "
        "(only if their terms allow it or the owners agreed); without it such a push needs --private",
    )
    d.set_defaults(func=_push_dataset)

    m = sub.add_parser(
        "model", help="push an adapter/model folder with a model card built from its results", allow_abbrev=False
    )
    m.add_argument("folder", help="adapter folder written by `mmla train` (adapter_config.json, weights, results.json)")
    m.add_argument("--results", nargs="+", default=None, help="more run folders/results.json to put on the card")
    m.add_argument("--license", default=None, help="license id for the card (e.g. apache-2.0)")
    m.add_argument("--eval-results-yaml", action="store_true", help="also write .eval_results/<task>.yaml files")
    _hub_options(m)
    m.set_defaults(func=_push_model)

    r = sub.add_parser(
        "results", help="update the model-index of an existing model repo (README only)", allow_abbrev=False
    )
    r.add_argument("results", nargs="+", help="run folders or results.json files written by `mmla eval`")
    r.add_argument(
        "--allow-mixed", action="store_true", help="merge results of different splits or prompt protocols (footnoted)"
    )
    r.add_argument("--eval-results-yaml", action="store_true", help="also write .eval_results/<task>.yaml files")
    _hub_options(r, private=False)
    r.set_defaults(func=_push_results)

    card = subparsers.add_parser("card", help="write a dataset or model card locally", allow_abbrev=False)
    csub = card.add_subparsers(dest="card_command", metavar="WHAT", required=True)
    cd = csub.add_parser(
        "dataset", help="(re)write README.md of a folder built by `mmla data build`", allow_abbrev=False
    )
    cd.add_argument("folder")
    cd.add_argument("--repo-id", default=None, help="repo id used in the usage snippet (default mmla/<task>)")
    cd.add_argument("--pretty-name", default=None)
    cd.add_argument("--out", default=None, help="write the card as OUT/README.md instead of into FOLDER")
    _overwrite_flag(cd, "card folder (--out)")
    cd.set_defaults(func=_card_dataset)
    cm = csub.add_parser("model", help="write a model card from results.json files", allow_abbrev=False)
    cm.add_argument("results", nargs="+", help="run folders or results.json files of one model")
    cm.add_argument("--adapter", default=None, help="adapter folder (hyperparameters from adapter_config.json etc.)")
    cm.add_argument("--repo-id", default=None)
    cm.add_argument("--license", default=None)
    cm.add_argument("--out", default=None, help="output folder, gets README.md (default: <first run>/MODEL_CARD.md)")
    _overwrite_flag(cm, "card (--out folder or MODEL_CARD.md)")
    cm.add_argument(
        "--allow-mixed",
        action="store_true",
        help="combine runs of different splits, task sets or prompt protocols (footnoted)",
    )
    _paper_flags(cm)
    cm.set_defaults(func=_card_model)

    lb = subparsers.add_parser(
        "leaderboard", help="rank models by pooled ACC (markdown + PNG), with the paper's rows", allow_abbrev=False
    )
    lb.add_argument("results", nargs="+", help="run folders or results.json files")
    lb.add_argument("--out", default=None, help="output folder (default: the first run folder)")
    _overwrite_flag(lb, "leaderboard")
    _paper_flags(lb)
    lb.add_argument(
        "--allow-mixed",
        action="store_true",
        help="show runs of different splits/task sets (footnoted) and prompt protocols (ranked apart)",
    )
    lb.set_defaults(func=_leaderboard)
