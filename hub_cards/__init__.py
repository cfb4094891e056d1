"""Hub layer of mmla: dataset cards, model cards with ``model-index`` results, pushes, leaderboards.

Imports are lazy so that ``mmla --help`` does not pay for matplotlib or pyarrow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "dataset_card": "dataset_card",
    "scan_built_dataset": "dataset_card",
    "write_dataset_card": "dataset_card",
    "model_card": "model_card",
    "write_model_card": "model_card",
    "eval_results": "model_card",
    "push_dataset": "push",
    "push_model": "push",
    "push_results": "push",
    "resolve_token": "push",
    "build_leaderboard": "leaderboard",
    "write_leaderboard": "leaderboard",
    "load_results": "results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"mmla.hub_cards.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'mmla.hub_cards' has no attribute {name!r}")
