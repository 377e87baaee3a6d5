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
from lipdub.models.base import Detection
from lipdub.models.registry import get_model
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


def follow(track_box: np.ndarray | None, faces: list[Detection], min_iou: float) -> Detection | None:
    """The face that continues the track (or, before the track starts, the largest)."""
    if not faces:
        return None
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


def face_detect(video: Path, stream: media.VideoStreamInfo, out_dir: Path, cfg: FaceConfig) -> FaceRecord:
    detector = get_model("detector", cfg.detector, min_confidence=cfg.min_confidence)
    n = stream.n_frames
    boxes = np.full((n, 4), np.nan, np.float32)
    scores = np.zeros(n, np.float32)
    counts = np.zeros(n, np.int16)
    track: np.ndarray | None = None
    batch: list[np.ndarray] = []
    indices: list[int] = []

    def flush() -> None:
        nonlocal track
        for i, faces in zip(indices, detector.detect(batch)):
            counts[i] = len(faces)
            hit = follow(track, faces, cfg.track_iou)
            if hit is not None:
                boxes[i], scores[i] = hit.box, hit.score
                track = boxes[i].copy()
        batch.clear()
        indices.clear()

    for i, rgb in media.read_frames(video, stream):
        batch.append(rgb)
        indices.append(i)
        if len(batch) == cfg.chunk_frames:
            flush()
    flush()
    found = ~np.isnan(boxes[:, 0])
    if not found.any():
        raise LipdubError(video, "no face found in any frame")
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
    return clip.run("face_detect", ["face"], ["probe"], [clip.video], FaceRecord, lambda out: face_detect(clip.video, stream, out, clip.config.face))


face_detect_task = stage_task(run_face_detect)
