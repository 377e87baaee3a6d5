"""enhance: make generated mouths look like they belong to the frame they land on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from lipdub.infra.config import EnhanceConfig
from lipdub.infra.engine import LOCAL, Engine, chunks
from lipdub.models import registry
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task


class EnhanceRecord(BaseModel):
    backend: str
    frames: int


def enhance_chunk(mouths_npy: Path, library_npy: Path, masks_npy: Path, selection_npz: Path, start: int, stop: int, cfg: EnhanceConfig) -> np.ndarray:
    """Enhanced mouths [start, stop), each matched to the source frame it lands on."""
    mouths = np.load(mouths_npy, mmap_mode="r")
    library = np.load(library_npy, mmap_mode="r")
    masks = np.load(masks_npy, mmap_mode="r")
    target = np.load(selection_npz)["target"][start:stop]
    enhancer = registry.enhancer(cfg)
    return enhancer.enhance(np.asarray(mouths[start:stop]), np.asarray(library[target]), np.asarray(masks[start:stop]).astype(np.float32) / 255)


def enhance(mouths_npy: Path, library_npy: Path, masks_npy: Path, selection_npz: Path, out_dir: Path, cfg: EnhanceConfig, engine: Engine = LOCAL) -> EnhanceRecord:
    n = len(np.load(mouths_npy, mmap_mode="r"))
    parts = engine.map(enhance_chunk, [(mouths_npy, library_npy, masks_npy, selection_npz, a, b, cfg) for a, b in chunks(n, 64)])
    out = np.concatenate(parts).astype(np.uint8, copy=False)
    np.save(out_dir / "mouths.npy", out)
    return EnhanceRecord(backend=cfg.backend, frames=len(out))


def run_enhance(clip: ClipRun) -> EnhanceRecord:
    at = clip.layout.artifact
    return clip.run(
        "enhance", ["enhance"], ["generate"], [], EnhanceRecord,
        lambda out: enhance(at("generate", "mouths.npy"), at("generate", "library.npy"), at("generate", "masks.npy"), at("generate", "selection.npz"), out, clip.config.enhance, clip.engine),
    )


enhance_task = stage_task(run_enhance)
