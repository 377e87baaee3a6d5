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


CHUNKS_PER_WORKER = 4  # chunks each worker is given before their results are written


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
    shape = np.load(mouths_npy, mmap_mode="r").shape
    out = np.lib.format.open_memmap(out_dir / "mouths.npy", mode="w+", dtype=np.uint8, shape=shape)
    ranges = chunks(shape[0], 64)
    # a few chunks per worker at a time, each written as it comes back: memory stays flat
    # however long the dub (all parts held at once took 0.4 GB per minute of output)
    group_size = CHUNKS_PER_WORKER * max(1, engine.workers)
    for first in range(0, len(ranges), group_size):
        group = ranges[first : first + group_size]
        for (a, b), part in zip(group, engine.map(enhance_chunk, [(mouths_npy, library_npy, masks_npy, selection_npz, a, b, cfg) for a, b in group])):
            out[a:b] = part
    out.flush()
    return EnhanceRecord(backend=cfg.backend, frames=shape[0])


def run_enhance(clip: ClipRun) -> EnhanceRecord:
    at = clip.layout.artifact
    return clip.run(
        "enhance", ["enhance"], ["generate"], [], EnhanceRecord,
        lambda out: enhance(at("generate", "mouths.npy"), at("generate", "library.npy"), at("generate", "masks.npy"), at("generate", "selection.npz"), out, clip.config.enhance, clip.engine),
    )


enhance_task = stage_task(run_enhance)
