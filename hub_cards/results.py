"""What hub_cards needs about results: the eval results type (:mod:`mmla.eval.results`) and Hub name checks.

Runs are read and checked in one place, :func:`mmla.eval.results.load_results`; this module re-exports
it for the cards, leaderboards and pushes, and adds the checks of names typed on the command line.
"""

from __future__ import annotations

import os
import re
from typing import Any

from huggingface_hub.utils import validate_repo_id

from mmla.eval.results import (
    METHODS,
    METRIC_LABELS,
    METRICS,
    RESULTS_FILENAME,
    RunResults,
    check_compatible,
    load_results,
    protocol_text,
    unsafe_text,
)

__all__ = [
    "METHODS",
    "METRICS",
    "METRIC_LABELS",
    "RESULTS_FILENAME",
    "RunResults",
    "check_compatible",
    "check_name",
    "check_repo_id",
    "fmt",
    "is_repo_id",
    "load_results",
    "protocol_text",
]

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def check_repo_id(repo_id: str, option: str = "--repo-id") -> str:
    """A Hub repo id (``org/name``) or a one-line error naming the option."""
    try:
        validate_repo_id(repo_id)
    except ValueError as err:
        raise ValueError(
            f"{option} {repo_id!r} is not a valid Hub repo id: {str(err).strip().splitlines()[0]}"
        ) from None
    return repo_id


def check_name(value: str, option: str) -> str:
    """Refuse a name given on the command line that would break a card's markdown."""
    problem = unsafe_text(value)
    if problem:
        raise ValueError(f"{option} {value!r} {problem}")
    return value


def is_repo_id(value: str | None) -> bool:
    """True for an ``org/name`` string that is not a local path (a Hub id the Hub's YAML checks accept)."""
    return bool(value) and bool(_REPO_ID.match(str(value))) and not os.path.exists(str(value))


def fmt(value: Any) -> str:
    """A metric cell: two decimals, or an em dash when absent."""
    if value is None:
        return "—"
    return f"{float(value):.2f}"
