"""One module per stage: a plain typed function that writes one artifact, plus its record."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any


def run_stages(clip: Any, stages: Iterable[str]) -> None:
    """Run stages by name, in order, as plain functions in this process (no Prefect): what
    the flows do, for tests, benchmarks and notebooks. Each goes through the stage cache."""
    for name in stages:
        getattr(importlib.import_module(f"lipdub.tasks.{name}"), f"run_{name}")(clip)
