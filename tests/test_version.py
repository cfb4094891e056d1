"""Results record the installed mmla version (no hard-coded string), also from a bare checkout."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from mmla.eval import runner

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_is_the_installed_distributions(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.mmla_version() == importlib.metadata.version("mmla")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: {"mmla": "9.9.9"}[name])
    assert runner.mmla_version() == "9.9.9"  # read at run time, not a constant


def test_bare_checkout_reads_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    declared = re.search(r'^version = "(.+)"', PYPROJECT.read_text(encoding="utf-8"), re.MULTILINE)
    assert declared and runner.mmla_version() == declared.group(1)
