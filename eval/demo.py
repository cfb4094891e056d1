"""``make demo``: the whole zero-shot pipeline on the synthetic sample releases, offline, in minutes on CPU.

Writes the 12 sample releases, evaluates the embedded SmolLM2-135M-Instruct on every
test split (generate mode), prints the results table and writes the plots.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_out", help="output folder")
    parser.add_argument("--mode", default="generate", choices=["generate", "rank"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=1, help="samples per class in each synthetic split")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from mmla.eval.adapters import load_model
    from mmla.eval.report import format_results, write_plots, write_report
    from mmla.eval.runner import evaluate_tasks
    from mmla.loaders.sample import MANUAL_DIRNAME, write_sample_release

    out = Path(args.out)
    t0 = time.perf_counter()
    release = write_sample_release(out / "data", per_class=args.per_class, overwrite=True)  # a rerun regenerates it
    print(f"sample releases: {release} ({time.perf_counter() - t0:.1f} s)")
    adapter = load_model(device="cpu", dtype="float32")
    results = evaluate_tasks(
        adapter,
        "all",
        str(release),
        "test",
        mode=args.mode,
        batch_size=args.batch_size,
        output_dir=out / "eval",
        text_only=True,
        videos=str(out / "data" / MANUAL_DIRNAME),
    )
    print(format_results(results))
    write_report([results], out / "eval")
    for p in write_plots(results, out / "eval"):
        print(f"wrote {p}")

    # >>> hub_cards hook: write the model card and leaderboard of this run (mmla.hub_cards, when installed).
    try:
        from mmla.hub_cards import demo_hook  # type: ignore[attr-defined]
    except ImportError:
        demo_hook = None
    if demo_hook is not None:
        demo_hook(out / "eval", results)
    # <<< hub_cards hook

    print(f"done in {time.perf_counter() - t0:.1f} s; results in {out / 'eval' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
