"""The thin Prefect wrapper every stage gets: named after the stage, retried on transient I/O only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from lipdub import LipdubError

F = TypeVar("F", bound=Callable[..., Any])


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O hiccups (network storage, busy disk); never retry bad input."""
    try:
        state.result()
    except LipdubError:
        return False
    except (OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


def stage_task(fn: F) -> F:
    """`run_probe` -> a task named "probe"; the stage cache, not Prefect's, decides reuse."""
    name = fn.__name__.removeprefix("run_")
    return task(fn, name=name, task_run_name=name, retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_transient, cache_policy=NO_CACHE, persist_result=False)  # type: ignore[return-value]
