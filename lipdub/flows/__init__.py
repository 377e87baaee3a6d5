"""Prefect flows (the per-clip DAG) and the CLI that runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath


def named_after_video(verb: str) -> Callable[[], str]:
    """A flow-run name like "dub face.mp4" from the `video` parameter, a path or a URL."""

    def run_name() -> str:
        from prefect.runtime import flow_run

        return f"{verb} {PurePosixPath(str(flow_run.parameters['video'])).name}"

    return run_name
