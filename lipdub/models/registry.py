"""Backend name -> class, and one instance per (kind, name, params) per process.

Stages ask here for models; nothing else constructs them, so hosting them elsewhere
(a Ray actor per worker) changes only this seam.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
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


def _wav2lip_generator(**kw: Any) -> Any:
    try:
        from lipdub.models.wav2lip import Wav2LipGenerator
    except ImportError as exc:  # torch is an extra: the default path needs none
        raise LipdubError("generate.backend", f"wav2lip needs PyTorch ({exc.name} is not installed): install lipdub's 'learned' extra (pip install -e '.[learned]')") from exc
    return Wav2LipGenerator(**kw)


def _classical_enhancer(**kw: Any) -> Any:
    from lipdub.models.classical import ClassicalEnhancer

    return ClassicalEnhancer(**kw)


BACKENDS: dict[str, dict[str, Callable[..., Any]]] = {
    "detector": {"mediapipe": _mediapipe_detector},
    "landmarker": {"mediapipe": _mediapipe_landmarker},
    "generator": {"retrieval": _retrieval_generator, "wav2lip": _wav2lip_generator},
    "enhancer": {"classical": _classical_enhancer},
}

LOADS: dict[tuple[str, str], int] = {}  # how many times each model was constructed in this process


@lru_cache(maxsize=None)
def _load(kind: str, name: str, params: tuple[tuple[str, Any], ...], stamp: tuple[int, int] | None) -> Any:
    LOADS[(kind, name)] = LOADS.get((kind, name), 0) + 1
    return BACKENDS[kind][name](**dict(params))


def _stamp(weights: Any) -> tuple[int, int] | None:
    """A weights file's size and modification time: new weights at the same path load afresh."""
    try:
        st = Path(weights).stat() if weights else None
    except OSError:
        return None
    return None if st is None else (st.st_size, st.st_mtime_ns)


def get_model(kind: str, name: str, **params: Any) -> Any:
    if name not in BACKENDS.get(kind, {}):
        raise LipdubError(name, f"unknown {kind} backend (known: {', '.join(BACKENDS.get(kind, {}))})")
    return _load(kind, name, tuple(sorted(params.items())), _stamp(params.get("weights")))


def detector(cfg: Any) -> Any:
    """The face detector a FaceConfig names."""
    return get_model("detector", cfg.detector, min_confidence=cfg.min_confidence)


def landmarker(name: str) -> Any:
    return get_model("landmarker", name)


def generator(cfg: Any) -> Any:
    """The generator a GenerateConfig names, with that backend's settings."""
    if cfg.backend == "retrieval":
        return get_model("generator", "retrieval", context_frames=cfg.context_frames, ridge_alpha=cfg.ridge_alpha, candidates=cfg.candidates, jump_cost=cfg.jump_cost, look_weight=cfg.look_weight, shape_follow=cfg.shape_follow)
    return get_model("generator", cfg.backend, weights=str(cfg.weights) if cfg.weights else None)


def enhancer(cfg: Any) -> Any:
    """The enhancer an EnhanceConfig names, with that backend's settings."""
    if cfg.backend == "classical":
        return get_model("enhancer", "classical", sharpen=cfg.sharpen, match_lips=cfg.match_lips, shading=cfg.shading)
    return get_model("enhancer", cfg.backend, weights=str(cfg.weights) if cfg.weights else None)


def preload(config: Any) -> None:
    """Load every model a run will use (in a worker before its first chunk, or while a
    Prefect API starts)."""
    detector(config.face)
    landmarker(config.stabilize.landmarker)
    generator(config.generate)
    enhancer(config.enhance)
