"""stabilize: landmarks once per frame, smoothed, and each frame's map to the canonical face.

Every later stage (generate, blend, drift) reuses these landmarks instead of running
the landmarker again. Pose is smoothed more than the lips: a head sways slowly, but
lips close for only a frame or two on /p b m/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel
from scipy.signal import savgol_filter

from lipdub import LipdubError, media
from lipdub import face_geometry as fg
from lipdub.infra.config import StabilizeConfig
from lipdub.infra.engine import LOCAL, Engine, chunks
from lipdub.models import registry
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task
from lipdub.tasks.face_detect import FaceRecord
from lipdub.tasks.probe import ProbeRecord, video_stream


class StabilizeRecord(BaseModel):
    frames_with_landmarks: int
    frames_usable: int  # landmarks found, not tiny, not in profile
    profile_frames: int
    median_yaw_deg: float
    mouth_opening_mean: float
    mouth_opening_p95: float
    landmarker: str
    canonical_size: int


def _smooth(series: np.ndarray, window: int) -> np.ndarray:
    """Savitzky-Golay along time over each run of valid frames."""
    out = series.copy()
    valid = ~np.isnan(series.reshape(len(series), -1)[:, 0])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        w = min(window, (b - a) | 1 if (b - a) % 2 else (b - a) - 1)
        if w >= 3:
            out[a:b] = savgol_filter(series[a:b], w, 2, axis=0)
    return out


def lips_for_sync(lm) -> tuple[np.ndarray, np.ndarray]:
    """A landmarks.npz's canonical lips (zeros where none) and the frames whose lips count:
    usable (not tiny, not in profile) and found."""
    return np.nan_to_num(lm["lips"]), lm["usable"] & ~np.isnan(lm["lips"][:, 0, 0])


def mouth_opening(lips_canonical: np.ndarray) -> np.ndarray:
    """Inner-lip gap (13 to 14) in canonical pixels, per frame."""
    upper, lower = fg.LIPS.index(fg.UPPER_INNER_LIP), fg.LIPS.index(fg.LOWER_INNER_LIP)
    return lips_canonical[:, lower, 1] - lips_canonical[:, upper, 1]


def face_window(box: np.ndarray, width: int, height: int, scale: float = 2.0) -> tuple[int, int, int, int]:
    """A square around a detected face box, `scale` times its size: the mesh's own detector
    finds a face that fills half the image far more reliably than one lost in a wide crop."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = scale * max(box[2] - box[0], box[3] - box[1]) / 2
    return max(0, int(cx - half)), max(0, int(cy - half)), min(width, int(cx + half)), min(height, int(cy + half))


def landmarks_chunk(video: Path, stream: media.VideoStreamInfo, boxes: np.ndarray, start: int, stop: int, landmarker_name: str) -> np.ndarray:
    """(stop - start, 478, 3) landmarks for frames [start, stop); `boxes` holds those frames' face boxes."""
    landmarker = registry.landmarker(landmarker_name)
    out = np.full((stop - start, 478, 3), np.nan, np.float32)
    if np.isnan(boxes[:, 0]).all():
        return out
    for i, rgb in media.read_frames(video, stream, start, stop):  # the whole chunk: the next one resumes here
        box = boxes[i - start]
        if np.isnan(box[0]):
            continue
        x0, y0, x1, y1 = face_window(box, stream.width, stream.height)
        pts = landmarker.landmarks(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        if pts is not None:
            pts[:, 0] += x0
            pts[:, 1] += y0
            out[i - start] = pts
    return out


def landmarks_in(video: Path, stream: media.VideoStreamInfo, boxes: np.ndarray, landmarker_name: str, chunk_frames: int = 64, engine: Engine = LOCAL) -> np.ndarray:
    """(frames, 478, 3) landmarks in full-frame pixels, NaN where none were found.

    `boxes` holds each frame's face box (NaN: no face there, skipped)."""
    n = stream.n_frames
    boxes = np.concatenate([boxes[:n], np.full((max(0, n - len(boxes)), 4), np.nan, np.float32)])
    parts = engine.map(landmarks_chunk, [(video, stream, boxes[a:b], a, b, landmarker_name) for a, b in chunks(n, chunk_frames)])
    return np.concatenate(parts) if parts else np.full((0, 478, 3), np.nan, np.float32)


def fill_between(points: np.ndarray, skipped: np.ndarray) -> np.ndarray:
    """Landmarks of skipped frames, interpolated linearly between the measured frames on
    either side (left NaN when either side has no face)."""
    if not skipped.any():
        return points
    out = points.copy()
    measured = np.flatnonzero(~skipped)
    for i in np.flatnonzero(skipped):
        k = np.searchsorted(measured, i)
        if 0 < k < len(measured):
            a, b = measured[k - 1], measured[k]
            t = (i - a) / (b - a)
            out[i] = (1 - t) * points[a] + t * points[b]  # NaN stays NaN
    return out


def stabilize(video: Path, stream: media.VideoStreamInfo, faces_npz: Path, out_dir: Path, cfg: StabilizeConfig, canonical_size: int | None, tiny: bool, engine: Engine = LOCAL, max_canonical_size: int | None = None) -> StabilizeRecord:
    faces = np.load(faces_npz)
    boxes = faces["boxes"].copy()
    skipped = np.ones(len(boxes), bool)
    skipped[:: cfg.every_nth] = False
    skipped[-1] = False
    boxes[skipped] = np.nan
    raw = fill_between(landmarks_in(video, stream, boxes, cfg.landmarker, engine=engine), skipped)
    found = ~np.isnan(raw[:, 0, 0])
    yaw = np.array([fg.yaw_deg(p) if ok else np.nan for p, ok in zip(raw, found)])
    profile = found & (np.abs(yaw) > cfg.max_yaw_deg)
    if found.sum() < min(max(3, 0.05 * len(found)), len(found)):  # a still image has one frame
        raise LipdubError(video, f"no face found (face landmarks in only {found.sum()} of {len(found)} frames)")
    lm = _smooth(raw[:, :, :2], cfg.smooth_lips_frames)
    canonical_size = canonical_size or fg.auto_canonical_size(lm, max_canonical_size)
    template = fg.canonical_template(lm[:, fg.STABLE], canonical_size)
    to_canon = np.full((len(lm), 2, 3), np.nan, np.float32)
    for i in np.flatnonzero(found):
        to_canon[i] = fg.to_canonical(lm[i, fg.STABLE], template)
    to_canon = _smooth(to_canon, cfg.smooth_pose_frames)
    lips = np.full((len(lm), len(fg.LIPS), 2), np.nan, np.float32)
    jaw = np.full((len(lm), len(fg.JAW), 2), np.nan, np.float32)
    nose = np.full((len(lm), len(fg.NOSE_BASE), 2), np.nan, np.float32)
    for i in np.flatnonzero(found):
        lips[i] = fg.apply(to_canon[i], lm[i, fg.LIPS])
        jaw[i] = fg.apply(to_canon[i], lm[i, fg.JAW])
        nose[i] = fg.apply(to_canon[i], lm[i, fg.NOSE_BASE])
    usable = found & ~profile & (not tiny)
    opening = mouth_opening(lips)
    np.savez_compressed(out_dir / "landmarks.npz", landmarks=lm, raw=raw[:, :, :2], to_canonical=to_canon, lips=lips, jaw=jaw, nose=nose, opening=opening, yaw=yaw, usable=usable, measured=~skipped, template=template, canonical_size=canonical_size)
    valid_open = opening[found]
    return StabilizeRecord(
        frames_with_landmarks=int(found.sum()),
        frames_usable=int(usable.sum()),
        profile_frames=int(profile.sum()),
        median_yaw_deg=float(np.nanmedian(yaw)) if found.any() else 0.0,
        mouth_opening_mean=float(valid_open.mean()) if found.any() else 0.0,
        mouth_opening_p95=float(np.percentile(valid_open, 95)) if found.any() else 0.0,
        landmarker=cfg.landmarker,
        canonical_size=canonical_size,
    )


def run_stabilize(clip: ClipRun) -> StabilizeRecord:
    stream = video_stream(clip.video, clip.record("probe", ProbeRecord))
    faces = clip.layout.artifact("face_detect", "faces.npz")
    tiny = clip.record("face_detect", FaceRecord).tiny
    gen = clip.config.generate
    return clip.run("stabilize", ["stabilize", "generate.canonical_size", "generate.max_canonical_size"], ["face_detect"], [], StabilizeRecord, lambda out: stabilize(clip.video, stream, faces, out, clip.config.stabilize, gen.canonical_size, tiny, clip.engine, gen.max_canonical_size), per_video=True)


stabilize_task = stage_task(run_stabilize)
