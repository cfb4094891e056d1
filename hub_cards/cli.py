"""``mmla push``, ``mmla card`` and ``mmla leaderboard``."""

from __future__ import annotations

import argparse
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
    p.add_argument("--retries", type=int, default=3, help="retries on network/server errors (default 3)")


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
    return {
        "token": args.token,
        "revision": args.revision,
        "create_pr": args.create_pr,
        "force": args.force,
        "commit_message": args.commit_message,
        "retries": args.retries,
        "rerun": _rerun(args),
    }


def _report(result) -> int:
    print(f"pushed {len(result.files)} file(s) to {result.repo_type} repo {result.repo_id}: {result.commit_url}")
    if result.pr_url:
        print(f"pull request: {result.pr_url}")
    return 0


def _push_dataset(args: argparse.Namespace) -> int:
    from mmla.hub_cards.push import push_dataset

    return _report(push_dataset(args.folder, args.repo_id, private=args.private, **_common(args)))


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


def _card_dataset(args: argparse.Namespace) -> int:
    from mmla.hub_cards.dataset_card import write_dataset_card

    path = write_dataset_card(args.folder, repo_id=args.repo_id, pretty_name=args.pretty_name)
    print(f"wrote {path}")
    return 0


def _card_model(args: argparse.Namespace) -> int:
    from mmla.hub_cards.model_card import write_model_card

    out = Path(args.out) if args.out else Path(args.results[0]) / "MODEL_CARD.md"
    if out.is_dir() or (not out.suffix and not out.exists()):
        out = out / "README.md"
    path = write_model_card(
        out,
        args.results,
        adapter_dir=args.adapter,
        repo_id=args.repo_id,
        license=args.license,
        allow_mixed=args.allow_mixed,
        with_paper=args.with_paper,
    )
    print(f"wrote {path}")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from mmla.hub_cards.leaderboard import write_leaderboard

    first = Path(args.results[0])
    out = Path(args.out) if args.out else first if first.is_dir() else first.parent
    paths = write_leaderboard(args.results, out, with_paper=args.with_paper, allow_mixed=args.allow_mixed)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    push = subparsers.add_parser("push", help="publish a built dataset, an adapter or results to the Hugging Face Hub")
    sub = push.add_subparsers(dest="push_command", metavar="WHAT", required=True)

    d = sub.add_parser("dataset", help="push a folder built by `mmla data build` (Parquet + generated card)")
    d.add_argument("folder", help="output folder of `mmla data build`")
    _hub_options(d)
    d.set_defaults(func=_push_dataset)

    m = sub.add_parser("model", help="push an adapter/model folder with a model card built from its results")
    m.add_argument("folder", help="adapter folder written by `mmla train` (adapter_config.json, weights, results.json)")
    m.add_argument("--results", nargs="+", default=None, help="more run folders/results.json to put on the card")
    m.add_argument("--license", default=None, help="license id for the card (e.g. apache-2.0)")
    m.add_argument("--eval-results-yaml", action="store_true", help="also write .eval_results/<task>.yaml files")
    _hub_options(m)
    m.set_defaults(func=_push_model)

    r = sub.add_parser("results", help="update the model-index of an existing model repo (README only)")
    r.add_argument("results", nargs="+", help="run folders or results.json files written by `mmla eval`")
    r.add_argument("--allow-mixed", action="store_true", help="allow results of different splits (footnoted)")
    r.add_argument("--eval-results-yaml", action="store_true", help="also write .eval_results/<task>.yaml files")
    _hub_options(r, private=False)
    r.set_defaults(func=_push_results)

    card = subparsers.add_parser("card", help="write a dataset or model card locally")
    csub = card.add_subparsers(dest="card_command", metavar="WHAT", required=True)
    cd = csub.add_parser("dataset", help="(re)write README.md of a folder built by `mmla data build`")
    cd.add_argument("folder")
    cd.add_argument("--repo-id", default=None, help="repo id used in the usage snippet (default mmla/<task>)")
    cd.add_argument("--pretty-name", default=None)
    cd.set_defaults(func=_card_dataset)
    cm = csub.add_parser("model", help="write a model card from results.json files")
    cm.add_argument("results", nargs="+", help="run folders or results.json files of one model")
    cm.add_argument("--adapter", default=None, help="adapter folder (hyperparameters from adapter_config.json etc.)")
    cm.add_argument("--repo-id", default=None)
    cm.add_argument("--license", default=None)
    cm.add_argument("--out", default=None, help="output file (default: <first run>/MODEL_CARD.md)")
    cm.add_argument("--allow-mixed", action="store_true")
    _paper_flags(cm)
    cm.set_defaults(func=_card_model)

    lb = subparsers.add_parser("leaderboard", help="rank models by pooled ACC (markdown + PNG), with the paper's rows")
    lb.add_argument("results", nargs="+", help="run folders or results.json files")
    lb.add_argument("--out", default=None, help="output folder (default: the first run folder)")
    _paper_flags(lb)
    lb.add_argument("--allow-mixed", action="store_true", help="rank runs of different splits/task sets (footnoted)")
    lb.set_defaults(func=_leaderboard)
