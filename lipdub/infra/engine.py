"""Where chunk work runs: in this process, or on Ray actors that keep models loaded.

Stages hand an engine a module-level function and one argument tuple per chunk; the
function asks the model registry for its models, so on Ray each actor (one worker
process) loads a model once and reuses it for every chunk and clip it is given.
Results come back in chunk order. Functions read and write local paths: on a
multi-node cluster the scratch directory must be a volume every node mounts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from lipdub import LipdubError
from lipdub.infra.config import RayConfig


class Engine(Protocol):
    workers: int

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]: ...

    def loads(self) -> dict[str, int]: ...


def _loads_here() -> dict[str, int]:
    from lipdub.models.registry import LOADS

    return {f"{kind}:{name}": n for (kind, name), n in LOADS.items()}


class LocalEngine:
    """Every chunk in this process, one after another (a single clip, tests, debugging)."""

    workers = 1

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
        return [fn(*args) for args in calls]

    def loads(self) -> dict[str, int]:
        return _loads_here()


class ModelHost:
    """A Ray actor: one worker process whose models stay loaded between calls."""

    def call(self, fn: Callable[..., Any], args: tuple) -> Any:
        return fn(*args)

    def loads(self) -> dict[str, int]:
        return _loads_here()

    def pid(self) -> int:
        import os

        return os.getpid()


class RayEngine:
    """A pool of ModelHost actors; chunks go to whichever actor is free."""

    def __init__(self, cfg: RayConfig) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        resources = ray.cluster_resources()
        gpus = cfg.gpus_per_worker if cfg.gpus_per_worker is not None else (1.0 if resources.get("GPU", 0) >= 1 else 0.0)
        self.workers = cfg.workers or max(1, int(resources.get("GPU", 0) // gpus if gpus else resources.get("CPU", 1)))
        host = ray.remote(num_cpus=1, num_gpus=gpus)(ModelHost)
        self.actors = [host.remote() for _ in range(self.workers)]
        self.gpus_per_worker = gpus
        ready, pending = ray.wait([a.pid.remote() for a in self.actors], num_returns=self.workers, timeout=cfg.start_timeout_s)
        if pending:
            self.shutdown()
            raise LipdubError(cfg.address or "local Ray", f"only {len(ready)} of {self.workers} workers started in {cfg.start_timeout_s:.0f} s (each needs 1 CPU{f' and {gpus:g} GPU' if gpus else ''}; free: {ray.available_resources()})")

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        return list(pool.map(lambda actor, args: actor.call.remote(fn, args), calls))

    def loads(self) -> dict[str, int]:
        """Model loads summed over the actors (one per actor per model when all is well)."""
        import ray

        total: dict[str, int] = {}
        for per_actor in ray.get([a.loads.remote() for a in self.actors]):
            for key, n in per_actor.items():
                total[key] = total.get(key, 0) + n
        return total

    def shutdown(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


LOCAL = LocalEngine()
_current: tuple[RayConfig, RayEngine] | None = None


def engine_for(cfg: RayConfig) -> Engine:
    """The process's engine for these settings (Ray only when enabled). Actors live as long
    as the process, so the models they hold serve every later clip; asking for other
    settings replaces them (two pools would compete for the same CPUs)."""
    global _current
    if not cfg.enabled:
        return LOCAL
    key = cfg.model_copy(update={"enabled": True})
    if _current is None or _current[0] != key:
        shutdown(keep_ray=_current is not None and _current[0].address == key.address)
        _current = (key, RayEngine(key))
    return _current[1]


def warm(engine: Engine, cfg: Any) -> None:
    """Load the run's models on every worker now (e.g. while a Prefect API boots)."""
    from lipdub.models.registry import preload

    if isinstance(engine, RayEngine):
        import ray

        ray.get([actor.call.remote(preload, (cfg,)) for actor in engine.actors])
    else:
        preload(cfg)


def shutdown(keep_ray: bool = False) -> None:
    """Stop this process's actors and (unless keep_ray) its connection to Ray; a local
    Ray started here stops with it, a joined cluster keeps running."""
    global _current
    import ray

    if _current is not None:
        _current[1].shutdown()
        _current = None
    if not keep_ray and ray.is_initialized():
        ray.shutdown()


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) ranges covering n items."""
    return [(start, min(n, start + size)) for start in range(0, n, size)]
