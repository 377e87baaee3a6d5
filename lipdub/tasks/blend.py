"""blend: put each enhanced mouth back into its frame and encode the frames in segments.

Inverse warp from canonical space, then a Laplacian-pyramid blend under the feathered
lower-face mask. Pixels where the mask is zero are copied from the decoded source, so
they are bit-identical to it before encoding, and the encoder takes them from the
source's own 4:2:0 planes (media.SourceFrame), so they lose only what it takes.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel

from lipdub import face_geometry as fg
from lipdub import media
from lipdub.infra.config import BlendConfig
from lipdub.infra.engine import LOCAL, Engine, chunks
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task
from lipdub.infra.stage_cache import STAGE_VERSIONS
from lipdub.tasks.probe import ProbeRecord, video_stream


class BlendRecord(BaseModel):
    segments: list[str]
    frames: int
    frames_blended: int
    mean_mask_px: float
    crf: int
    trial_psnr_db: float | None  # the source encoded alone at that CRF (None: fidelity_db off)


def pyramid_blend(base: np.ndarray, top: np.ndarray, mask: np.ndarray, levels: int) -> np.ndarray:
    """Laplacian-pyramid blend of top over base with a soft mask (all float32)."""
    levels = max(1, min(levels, int(np.log2(max(2, min(base.shape[:2])))) - 2))
    g_mask = [mask]
    lap_a, lap_b = [], []
    a, b = base, top
    for _ in range(levels - 1):
        a_down, b_down = cv2.pyrDown(a), cv2.pyrDown(b)
        size = (a.shape[1], a.shape[0])
        lap_a.append(a - cv2.pyrUp(a_down, dstsize=size))
        lap_b.append(b - cv2.pyrUp(b_down, dstsize=size))
        g_mask.append(cv2.pyrDown(g_mask[-1]))
        a, b = a_down, b_down
    out = a * (1 - g_mask[-1][..., None]) + b * g_mask[-1][..., None]
    for la, lb, m in zip(reversed(lap_a), reversed(lap_b), reversed(g_mask[:-1])):
        out = cv2.pyrUp(out, dstsize=(la.shape[1], la.shape[0])) + la * (1 - m[..., None]) + lb * m[..., None]
    return out


def paste(frame: np.ndarray, mouth: np.ndarray, mask: np.ndarray, to_canonical: np.ndarray, size: int, levels: int, move: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """The frame with the mouth blended in, and how many pixels changed.

    `move` (2x3, canonical) takes the mouth to where the frame's head pose puts it
    (generate's selection.npz); it is folded into the one warp back into the frame, so
    the mouth is resampled once (moved in a warp of its own first, the fast preset's
    224 px mouths lost a tenth of their sharpness)."""
    x0, y0, _, _ = fg.mouth_box(size)
    canonical_to_frame = np.vstack([fg.invert(to_canonical), [0, 0, 1]])
    from_patch = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    patch_to_frame = (canonical_to_frame @ from_patch)[:2]  # where the mask lies: the target's own lower face
    moved = canonical_to_frame @ (from_patch if move is None else np.vstack([move, [0, 0, 1]]) @ from_patch)
    h, w = mouth.shape[:2]
    corners = fg.apply(patch_to_frame, np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float32))
    pad = 2**levels
    fx0, fy0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - pad, 0)
    fx1, fy1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + pad, [frame.shape[1], frame.shape[0]])
    if fx1 - fx0 < 8 or fy1 - fy0 < 8:
        return frame, 0
    m, m_mouth = patch_to_frame.copy(), moved[:2].copy()
    m[:, 2] -= [fx0, fy0]
    m_mouth[:, 2] -= [fx0, fy0]
    roi_size = (int(fx1 - fx0), int(fy1 - fy0))
    roi = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    warped = cv2.warpAffine(mouth, m_mouth, roi_size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    inside = cv2.warpAffine(np.ones((h, w), np.float32), m, roi_size, flags=cv2.INTER_NEAREST, borderValue=0) > 0
    alpha = cv2.warpAffine(mask.astype(np.float32) / 255, m, roi_size, flags=cv2.INTER_LINEAR, borderValue=0)
    warped = np.where(inside[..., None], warped, roi)
    blended = pyramid_blend(roi, warped, alpha, levels)
    support = alpha > 0
    out = frame.copy()
    region = out[fy0:fy1, fx0:fx1]
    region[support] = np.clip(np.round(blended[support]), 0, 255).astype(np.uint8)
    return out, int(support.sum())


def blend_segment(video: Path, stream: media.VideoStreamInfo, landmarks_npz: Path, mouths_npy: Path, masks_npy: Path, selection_npz: Path, start: int, stop: int, segment: Path, cfg: BlendConfig) -> tuple[int, int]:
    """Output frames [start, stop) blended and encoded as one segment; (frames blended, pixels changed)."""
    lm = np.load(landmarks_npz)
    size, to_canonical = int(lm["canonical_size"]), lm["to_canonical"]
    mouths = np.load(mouths_npy, mmap_mode="r")
    masks = np.load(masks_npy, mmap_mode="r")
    sel = np.load(selection_npz)
    target, chosen = sel["target"][start:stop], sel["chosen"][start:stop]
    moves = sel["moves"][start:stop] if "moves" in sel else [None] * len(target)
    blended = changed = 0
    with media.SegmentWriter(segment, stream.width, stream.height, media.fps_fraction(float(sel["fps"])), cfg.crf, cfg.preset) as writer:
        for j, source in enumerate(media.read_frame_sequence(video, stream, target.tolist(), planes=True)):
            frame = source.rgb
            if chosen[j] >= 0:
                frame, px = paste(frame, np.asarray(mouths[start + j]), np.asarray(masks[start + j]), to_canonical[target[j]], size, cfg.pyramid_levels, moves[j])
                blended += px > 0
                changed += px
            writer.write(frame, source)
    return int(blended), int(changed)


def crf_memo_name(cfg: BlendConfig, fps: Fraction) -> str:
    """The file name a CRF choice is kept under: every setting and the code it depends on."""
    settings = [STAGE_VERSIONS["blend"], cfg.crf, cfg.fidelity_db, cfg.min_crf, cfg.fidelity_frames, cfg.preset, str(fps)]
    return f"crf-{hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:12]}.json"


def choose_crf(video: Path, stream: media.VideoStreamInfo, fps: Fraction, cfg: BlendConfig, scratch: Path, memo: Path | None = None) -> tuple[int, float | None]:
    """The highest CRF, up to cfg.crf, at which a stretch from the middle of the source,
    encoded alone, keeps cfg.fidelity_db; cfg.min_crf when none does.

    Outside the mouth the output is the source, so the encode is all that changes those
    pixels, and how much one encode takes depends on the footage: at CRF 18 a clean clip
    keeps about 46 dB, a grainy one 42. Choosing the CRF per clip keeps both near the source.
    The choice depends on the source alone: with `memo` (a file named by crf_memo_name) a
    video dubbed again, into another language, reuses it instead of a second trial."""
    if cfg.fidelity_db is None:
        return cfg.crf, None
    if memo is not None and memo.is_file():
        kept = json.loads(memo.read_text())
        return int(kept["crf"]), kept["trial_psnr_db"]
    crf, psnr = _trial_crf(video, stream, fps, cfg, scratch)
    if memo is not None:
        memo.parent.mkdir(parents=True, exist_ok=True)
        partial = memo.with_name(f".{memo.name}.{uuid.uuid4().hex}")
        partial.write_text(json.dumps({"crf": crf, "trial_psnr_db": psnr}))
        os.replace(partial, memo)  # whole or not at all: dubs of one video may run at once
    return crf, psnr


def _trial_crf(video: Path, stream: media.VideoStreamInfo, fps: Fraction, cfg: BlendConfig, scratch: Path) -> tuple[int, float | None]:
    """choose_crf's bisection, by trial encodes of the middle of the source."""
    start = max(0, stream.n_frames // 2 - cfg.fidelity_frames // 2)
    frames = [frame for _, frame in media.read_frames(video, stream, start, start + cfg.fidelity_frames, planes=True)]
    if not frames:
        return cfg.crf, None
    psnr_at: dict[int, float] = {}

    def keeps(crf: int) -> bool:
        psnr_at[crf] = media.transcode_psnr_db(frames, fps, crf, cfg.preset, scratch)
        return psnr_at[crf] >= cfg.fidelity_db

    if keeps(cfg.crf):
        return cfg.crf, psnr_at[cfg.crf]
    lo, bad, good = cfg.min_crf, cfg.crf, None  # PSNR falls as the CRF rises: bisect for the last CRF that keeps
    while lo < bad:
        mid = (lo + bad) // 2
        if keeps(mid):
            good, lo = mid, mid + 1
        else:
            bad = mid
    crf = cfg.min_crf if good is None else good
    return crf, psnr_at[crf]


def blend(video: Path, stream: media.VideoStreamInfo, landmarks_npz: Path, mouths_npy: Path, masks_npy: Path, selection_npz: Path, out_dir: Path, cfg: BlendConfig, engine: Engine = LOCAL, crf_memo: Callable[[str], Path] | None = None) -> BlendRecord:
    """crf_memo(name): where the source's CRF choice under that name is kept (None: not kept)."""
    selection = np.load(selection_npz)
    n, fps = len(selection["target"]), media.fps_fraction(float(selection["fps"]))
    seg_dir = out_dir / "segments"
    seg_dir.mkdir()
    crf, trial_psnr = choose_crf(video, stream, fps, cfg, out_dir, crf_memo(crf_memo_name(cfg, fps)) if crf_memo else None)
    cfg = cfg.model_copy(update={"crf": crf})
    ranges = chunks(n, cfg.chunk_frames)
    segments = [f"{k:05d}.mp4" for k in range(len(ranges))]
    counts = engine.map(blend_segment, [(video, stream, landmarks_npz, mouths_npy, masks_npy, selection_npz, a, b, seg_dir / name, cfg) for (a, b), name in zip(ranges, segments)])
    blended = sum(c[0] for c in counts)
    changed = sum(c[1] for c in counts)
    return BlendRecord(segments=segments, frames=n, frames_blended=blended, mean_mask_px=changed / max(blended, 1), crf=crf, trial_psnr_db=trial_psnr)


def run_blend(clip: ClipRun) -> BlendRecord:
    stream = video_stream(clip.video, clip.record("probe", ProbeRecord))
    at = clip.layout.artifact
    return clip.run(
        "blend", ["blend"], ["stabilize", "generate", "enhance"], [], BlendRecord,
        lambda out: blend(clip.video, stream, at("stabilize", "landmarks.npz"), at("enhance", "mouths.npy"), at("generate", "masks.npy"), at("generate", "selection.npz"), out, clip.config.blend, clip.engine,
                          crf_memo=lambda name: clip.layout.source_fact(clip.video, name)),
    )


blend_task = stage_task(run_blend)
