"""What ``make demo`` writes about its own run: a model card and a leaderboard next to ``results.json``."""

from __future__ import annotations

import os
from pathlib import Path

from mmla.hub_cards.leaderboard import write_leaderboard
from mmla.hub_cards.model_card import write_model_card
from mmla.hub_cards.results import load_results


def demo_outputs(results_dir: str | os.PathLike[str], *, with_paper: bool = True) -> dict[str, Path]:
    """Write ``MODEL_CARD.md``, ``leaderboard.md`` and ``leaderboard.png`` into a run folder.

    ``results_dir`` is an ``mmla eval`` output folder (or several runs under one folder, each with its
    own ``results.json``: they are ranked together). Returns the written paths by kind.
    """
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


def demo_hook(results_dir: str | os.PathLike[str], results: object = None) -> dict[str, Path]:
    """The call ``mmla.eval.demo`` makes after its run (``results`` is unused: the file on disk is the input)."""
    paths = demo_outputs(results_dir)
    for path in paths.values():
        print(f"wrote {path}")
    return paths
