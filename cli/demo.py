"""``make demo``: the whole zero-shot pipeline on the synthetic sample releases, offline, in minutes on CPU.

Writes the 12 sample releases, evaluates the embedded SmolLM2-135M-Instruct on every test split
(generate mode), prints the results table, writes the plots, a model card and a leaderboard of the run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path


def demo_outputs(results_dir: str | os.PathLike[str], *, with_paper: bool = True) -> dict[str, Path]:
    """Write ``MODEL_CARD.md``, ``leaderboard.md`` and ``leaderboard.png`` into a run folder.

    ``results_dir`` is an ``mmla eval`` output folder (or several runs under one folder, each with its
    own ``results.json``: they are ranked together). Returns the written paths by kind.
    """
    from mmla.hub_cards.leaderboard import write_leaderboard
    from mmla.hub_cards.model_card import write_model_card
    from mmla.hub_cards.results import load_results

    root = Path(results_dir)
    runs = [load_results(root)] if (root / "results.json").is_file() else []
    runs += [load_results(p.parent) for p in sorted(root.glob("*/results.json"))]
    if not runs:
        raise FileNotFoundError(f"{root}: no results.json here or in its subfolders; run `mmla eval` first")
    first = runs[0]
    adapter = first.adapter if first.adapter and Path(first.adapter).is_dir() else None
    card = write_model_card(root / "MODEL_CARD.md", first, adapter_dir=adapter, with_paper=with_paper)
    paths = {"model_card": card}
    paths.update(write_leaderboard(runs, root, with_paper=with_paper, allow_mixed=True))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    parser.add_argument("--out", default="demo_out", help="output folder")
    parser.add_argument("--mode", default="generate", choices=["generate", "rank"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=1, help="samples per class in each synthetic split")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from mmla.eval.arguments import EvalArguments, ModelArguments
    from mmla.eval.report import format_results, write_plots, write_report
    from mmla.eval.runner import evaluate_tasks
    from mmla.loaders.sample import MANUAL_DIRNAME, write_sample_release

    out = Path(args.out)
    t0 = time.perf_counter()
    release = write_sample_release(out / "data", per_class=args.per_class, overwrite=True)  # a rerun regenerates it
    print(f"sample releases: {release} ({time.perf_counter() - t0:.1f} s)")
    eval_args = EvalArguments(
        tasks="all",
        data=str(release),
        split="test",
        mode=args.mode,
        batch_size=args.batch_size,
        output_dir=str(out / "eval"),
        text_only=True,
        videos=str(out / "data" / MANUAL_DIRNAME),
    )
    adapter = ModelArguments(dtype="float32").load(device="cpu")
    results = evaluate_tasks(adapter, **eval_args.runner_kwargs())
    print(format_results(results))
    write_report([results], out / "eval")
    for p in write_plots(results, out / "eval"):
        print(f"wrote {p}")
    for p in demo_outputs(out / "eval").values():
        print(f"wrote {p}")
    print(f"done in {time.perf_counter() - t0:.1f} s; results in {out / 'eval' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
