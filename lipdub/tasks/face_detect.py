"""face_detect: one target face tracked through the clip, and the crop that holds it.

Detection runs over batched chunks of decoded frames. The target is the largest face
where it first appears and is then followed by overlap, so the track never jumps to
another person; frames where it is not found are passed through untouched later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from lipdub import LipdubError, media
from lipdub.infra.config import FaceConfig
from lipdub.infra.engine import LOCAL, Engine, chunks
from lipdub.models.base import Detection
from lipdub.models import registry
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task
from lipdub.tasks.probe import ProbeRecord, video_stream


class FaceRecord(BaseModel):
    n_frames: int
    frames_with_face: int
    max_faces_in_frame: int
    crop_box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels
    median_face_px: float
    tiny: bool
    detector: str


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def follow(track_box: np.ndarray | None, faces: list[Detection], min_iou: float, point: tuple[float, float] | None = None) -> Detection | None:
    """The face that continues the track; before it starts, the largest face, or the one
    under `point` (nearest centre) when the user chose one."""
    if not faces:
        return None
    if track_box is None and point is not None:
        x, y = point
        under = [d for d in faces if d.box[0] <= x <= d.box[2] and d.box[1] <= y <= d.box[3]]
        return min(under, key=lambda d: (d.box[0] + d.box[2] - 2 * x) ** 2 + (d.box[1] + d.box[3] - 2 * y) ** 2) if under else None
    if track_box is None:
        return max(faces, key=lambda d: d.area)
    best = max(faces, key=lambda d: iou(track_box, np.array(d.box)))
    return best if iou(track_box, np.array(best.box)) >= min_iou else None


def crop_for(boxes: np.ndarray, width: int, height: int, padding: float) -> tuple[int, int, int, int]:
    """Union of the track, padded; extended up for the forehead and down 10 % past the chin."""
    valid = boxes[~np.isnan(boxes[:, 0])]
    x0, y0 = valid[:, 0].min(), valid[:, 1].min()
    x1, y1 = valid[:, 2].max(), valid[:, 3].max()
    size = float(np.median(valid[:, 3] - valid[:, 1]))
    pad = padding * size
    box = (x0 - pad, y0 - pad - 0.2 * size, x1 + pad, y1 + pad + 0.1 * size)
    return (max(0, int(box[0])), max(0, int(box[1])), min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3]))))


def detect_chunk(video: Path, stream: media.VideoStreamInfo, start: int, stop: int, cfg: FaceConfig) -> list[tuple[int, list[Detection]]]:
    """(frame index, faces) for frames [start, stop): the unit of work an engine spreads over workers."""
    detector = registry.detector(cfg)
    indices, frames = zip(*media.read_frames(video, stream, start, stop)) if stop > start else ((), ())
    return list(zip(indices, detector.detect(list(frames))))


def face_detect(video: Path, stream: media.VideoStreamInfo, out_dir: Path, cfg: FaceConfig, engine: Engine = LOCAL) -> FaceRecord:
    n = stream.n_frames
    boxes = np.full((n, 4), np.nan, np.float32)
    scores = np.zeros(n, np.float32)
    counts = np.zeros(n, np.int16)
    found_per_chunk = engine.map(detect_chunk, [(video, stream, a, b, cfg) for a, b in chunks(n, cfg.chunk_frames)])
    track: np.ndarray | None = None
    for i, faces in (hit for chunk in found_per_chunk for hit in chunk):
        counts[i] = len(faces)
        hit = follow(track, faces, cfg.track_iou, cfg.point)
        if hit is not None:
            boxes[i], scores[i] = hit.box, hit.score
            track = boxes[i].copy()
    found = ~np.isnan(boxes[:, 0])
    if not found.any():
        where = f" at x,y = {cfg.point[0]:g},{cfg.point[1]:g}" if cfg.point and counts.any() else ""
        raise LipdubError(video, f"no face found{where} in any frame")
    crop = crop_for(boxes, stream.width, stream.height, cfg.padding)
    median_px = float(np.median(boxes[found, 3] - boxes[found, 1]))
    np.savez_compressed(out_dir / "faces.npz", boxes=boxes, scores=scores, counts=counts, crop=np.array(crop))
    return FaceRecord(
        n_frames=n,
        frames_with_face=int(found.sum()),
        max_faces_in_frame=int(counts.max()),
        crop_box=crop,
        median_face_px=median_px,
        tiny=median_px < cfg.min_face_px,
        detector=cfg.detector,
    )


def run_face_detect(clip: ClipRun) -> FaceRecord:
    stream = video_stream(clip.video, clip.record("probe", ProbeRecord))
    return clip.run("face_detect", ["face"], ["probe"], [clip.video], FaceRecord, lambda out: face_detect(clip.video, stream, out, clip.config.face, clip.engine), per_video=True)


face_detect_task = stage_task(run_face_detect)
