"""Backend name -> class, and one instance per (kind, name, params) per process.

Stages ask here for models; nothing else constructs them, so hosting them elsewhere
(a Ray actor per worker) changes only this seam.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from lipdub import LipdubError


def _mediapipe_detector(**kw: Any) -> Any:
    from lipdub.models.mediapipe_face import MediaPipeDetector

    return MediaPipeDetector(**kw)


def _mediapipe_landmarker(**kw: Any) -> Any:
    from lipdub.models.mediapipe_face import MediaPipeLandmarker

    return MediaPipeLandmarker(**kw)


def _retrieval_generator(**kw: Any) -> Any:
    from lipdub.models.retrieval import RetrievalGenerator

    return RetrievalGenerator(**kw)


def _classical_enhancer(**kw: Any) -> Any:
    from lipdub.models.classical import ClassicalEnhancer

    return ClassicalEnhancer(**kw)


BACKENDS: dict[str, dict[str, Callable[..., Any]]] = {
    "detector": {"mediapipe": _mediapipe_detector},
    "landmarker": {"mediapipe": _mediapipe_landmarker},
    "generator": {"retrieval": _retrieval_generator},
    "enhancer": {"classical": _classical_enhancer},
}

LOADS: dict[tuple[str, str], int] = {}  # how many times each model was constructed in this process


@lru_cache(maxsize=None)
def _load(kind: str, name: str, params: tuple[tuple[str, Any], ...]) -> Any:
    LOADS[(kind, name)] = LOADS.get((kind, name), 0) + 1
    return BACKENDS[kind][name](**dict(params))


def get_model(kind: str, name: str, **params: Any) -> Any:
    if name not in BACKENDS.get(kind, {}):
        raise LipdubError(name, f"unknown {kind} backend (known: {', '.join(BACKENDS.get(kind, {}))})")
    return _load(kind, name, tuple(sorted(params.items())))


def preload(config: Any) -> None:
    """Load the models a run will use (e.g. while a Prefect API starts)."""
    get_model("detector", config.face.detector, min_confidence=config.face.min_confidence)
    get_model("landmarker", config.stabilize.landmarker)
