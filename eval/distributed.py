"""Data-parallel evaluation under ``accelerate launch`` / ``torchrun``: process state, sharding, gathering.

Process 0 reads the cache and writes every file; the pending samples are dealt out by length, each process
scores its share, and the rows are gathered back to every process.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

import torch

__all__ = ["broadcast_from_main", "dist_state", "gather_rows", "shard_by_length"]

T = TypeVar("T")


def dist_state() -> Any:
    """The accelerate state under a multi-process launch (``accelerate launch``/``torchrun``), else ``None``.

    Without CUDA (or with ``ACCELERATE_USE_CPU``) it is a gloo CPU group: a plain ``PartialState()`` would
    see no GPU, fall back to a single process, and every process would evaluate everything and write.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    state = PartialState(cpu=not torch.cuda.is_available() or parse_flag_from_env("ACCELERATE_USE_CPU"))
    if state.num_processes != world:
        raise RuntimeError(
            f"WORLD_SIZE={world} but accelerate set up {state.num_processes} process(es) "
            f"({state.distributed_type}); launch with `accelerate launch` or `torchrun`"
        )
    return state


def broadcast_from_main(obj: T, state: Any) -> T:
    """Process 0's ``obj`` on every process (e.g. the cache it read and repaired)."""
    from accelerate.utils import broadcast_object_list

    box = [obj]
    broadcast_object_list(box, from_process=0)
    return box[0]


def shard_by_length(samples: list[T], state: Any, length: Any) -> list[T]:
    """This process's share: the samples sorted longest first and dealt round-robin.

    Every process gets a similar mix of long and short samples (contiguous chunks would give one process
    all of a long-prompt task).
    """
    return sorted(samples, key=lambda s: -length(s))[state.process_index :: state.num_processes]


def gather_rows(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Every process's ``{task key: rows}`` merged, on every process."""
    from accelerate.utils import gather_object

    out: dict[str, list[dict[str, Any]]] = {}
    for part in gather_object([rows]):
        for key, task_rows in part.items():
            out.setdefault(key, []).extend(task_rows)
    return out
