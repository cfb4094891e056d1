"""MMLA data layer: task registry, readers, the ``datasets`` builder, frame sampling.

Heavy imports (datasets, torch) are deferred so that ``mmla.loaders.tasks`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_task", "sample_frames", "write_sample_release"]

_LAZY = {
    "load_task": "mmla.loaders.load",
    "sample_frames": "mmla.loaders.video",
    "write_sample_release": "mmla.loaders.sample",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmla.loaders' has no attribute {name!r}")
