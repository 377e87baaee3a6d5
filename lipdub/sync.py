"""Audio-visual sync measurement: how far, and how steadily, sound leads or trails the lips.

At each candidate lag a ridge model predicts lip shape from audio (log-mel with
context) and is scored on held-out folds (Slaney & Covell, "FaceSync", NIPS 2000).
The lag that predicts best is the offset; the same held-out predictions scored per
window give offsets over time, whose slope is the drift. Sign: positive = audio late.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import theilslopes

from lipdub import av_model
from lipdub import face_geometry as fg
from lipdub.audio_features import LogMel, speech_mask_frames
from lipdub.infra.config import DriftConfig

N_COMPONENTS = 3
# Audio context either side of a frame: too wide and the regression absorbs a lag (a
# flat-topped score curve), too narrow and it misses how the mouth anticipates sound.
# Two frames read the real clips best (benchmarks/sync_doctor.py).
CONTEXT_FRAMES = 2
LAG_STEP_FRAMES = 0.5  # lags are sampled from the audio at half-frame steps
MIN_DRIFT_SPAN_S = 20.0  # shorter clips give too few windows for a slope
MIN_WINDOW_SPEECH = 0.3  # a window that is mostly silence has no offset to read


@dataclass(frozen=True)
class SyncWindow:
    start_s: float
    end_s: float
    offset_frames: float
    score: float


@dataclass(frozen=True)
class SyncResult:
    offset_frames: float
    confidence: float  # peak score minus the median score over lags
    drift_frames_per_min: float
    sync_class: str  # in_sync | constant_offset | growing_drift | cannot_tell
    verdict: str  # fine | noticeable | unacceptable | unknown
    reason: str
    windows: list[SyncWindow]


def mouth_features(lips: np.ndarray) -> np.ndarray:
    """Articulatory distances (inner and outer opening, widths, side openings) per frame.

    Distances between lip points are blind to the head moving the whole mouth, which
    a raw lip-contour PCA mistakes for speech."""
    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(lips[:, fg.LIPS.index(a)] - lips[:, fg.LIPS.index(b)], axis=1)

    return np.stack([dist(13, 14), dist(0, 17), dist(61, 291), dist(78, 308), dist(82, 87), dist(312, 317)], axis=1)


def _shape_targets(lips: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Main modes of mouth motion (unit variance) and their share of the motion (weights)."""
    feats = mouth_features(lips)
    z = np.zeros_like(feats)
    z[valid] = (feats[valid] - feats[valid].mean(axis=0)) / (feats[valid].std(axis=0) + 1e-6)
    _, sv, vt = np.linalg.svd(z[valid], full_matrices=False)
    k = min(N_COMPONENTS, len(sv))
    y = np.zeros((len(z), N_COMPONENTS))
    y[valid, :k] = z[valid] @ vt[:k].T
    weights = np.zeros(N_COMPONENTS)
    weights[:k] = sv[:k] ** 2
    return y / (y[valid].std(axis=0) + 1e-6), weights / weights.sum()


def verdict_for(offset: float, fine: int, noticeable: int) -> str:
    a = abs(offset)
    return "fine" if a <= fine else "noticeable" if a <= noticeable else "unacceptable"


def _peak(scores: np.ndarray, lags: np.ndarray) -> float:
    """Best lag, refined to a fraction of a frame by a parabola through the peak."""
    best = int(scores.argmax())
    offset = float(lags[best])
    if 0 < best < len(lags) - 1:
        a, b, c = scores[best - 1 : best + 2]
        denom = a - 2 * b + c
        offset += 0.5 * (a - c) / denom if denom < 0 else 0.0
    return offset


def measure_sync(lips: np.ndarray, valid: np.ndarray, audio: np.ndarray, sample_rate: int, frame_times_s: np.ndarray, fps: float, cfg: DriftConfig = DriftConfig()) -> SyncResult:
    """Sync of one clip: lips (frames, 40, 2) canonical, mono audio, each frame's time on the audio's clock."""
    max_lag, calibration_frames = cfg.max_lag_frames, cfg.calibration_frames
    def cannot(reason: str) -> SyncResult:
        return SyncResult(float("nan"), 0.0, float("nan"), "cannot_tell", "unknown", reason, [])

    if valid.sum() < max(2 * fps, 30):
        return cannot("too few frames with a visible mouth")
    speech = speech_mask_frames(audio, sample_rate, frame_times_s)
    if len(audio) < sample_rate // 2 or speech.mean() < 0.1:
        return cannot("no speech")
    y, weights = _shape_targets(lips, valid)
    mel = LogMel(audio, sample_rate)
    lags = np.arange(-max_lag, max_lag + LAG_STEP_FRAMES / 2, LAG_STEP_FRAMES)
    block = max(10, int(round(fps)))

    def features(lag: float) -> np.ndarray:
        """Audio heard `lag` frames after each frame's time: what lines up if the audio is that late."""
        return av_model.with_context(av_model.normalise(mel.at(frame_times_s + lag / fps, 1 / fps), speech), CONTEXT_FRAMES)

    preds = np.stack([av_model.cross_predict(features(lag), y, valid, alpha=30.0, block=block) for lag in lags])

    everything = np.flatnonzero(valid)
    per_mode = np.array([[av_model.correlation(p[everything, c], y[everything, c]) for c in range(N_COMPONENTS)] for p in preds])
    # a mode counts by its share of the motion times how well sound predicts it at its best
    # lag: a large mode the audio cannot explain (head nods the canonical map missed) is noise
    weights = weights * np.clip(per_mode.max(axis=0), 0, None) ** 2
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(N_COMPONENTS, 1 / N_COMPONENTS)

    def score(idx: np.ndarray) -> np.ndarray:
        return np.array([sum(w * av_model.correlation(p[idx, c], y[idx, c]) for c, w in enumerate(weights)) for p in preds])

    scores = per_mode @ weights
    offset = _peak(scores, lags) - calibration_frames
    confidence = float(scores.max() - np.median(scores))
    windows = []
    n_win = int(round(cfg.window_s * fps))
    for start in range(0, max(1, len(valid) - n_win + 1), max(1, int(round(cfg.hop_s * fps)))):
        idx = np.arange(start, min(start + n_win, len(valid)))
        idx = idx[valid[idx]]
        if len(idx) < n_win // 2 or speech[idx].mean() < MIN_WINDOW_SPEECH:
            continue
        ws = score(idx)
        if ws.argmax() in (0, len(lags) - 1):  # best at the end of the range: no peak inside it, no reading
            continue
        windows.append(SyncWindow(float(frame_times_s[start]), float(frame_times_s[min(start + n_win, len(valid)) - 1]), _peak(ws, lags) - calibration_frames, float(ws.max())))
    drift, drift_low, drift_high = 0.0, 0.0, 0.0
    if len(windows) >= 3:
        t = np.array([(w.start_s + w.end_s) / 2 for w in windows])
        o = np.array([w.offset_frames for w in windows], float)
        slope, _, low, high = theilslopes(o, t, alpha=0.9)
        drift, drift_low, drift_high = slope * 60.0, low * 60.0, high * 60.0
    if confidence < 0.05:
        return SyncResult(offset, confidence, drift, "cannot_tell", "unknown", "audio does not predict the lips at any lag", windows)
    span_s = frame_times_s[-1] - frame_times_s[0]
    if span_s < MIN_DRIFT_SPAN_S:  # a handful of whole-frame window offsets: no slope to speak of
        drift = float("nan")
    steady = drift_low <= 0.0 <= drift_high  # the slope's 90 % interval holds zero
    if not np.isnan(drift) and not steady and abs(drift) * span_s / 60.0 > 1.5:
        sync_class = "growing_drift"
    elif abs(offset) > cfg.fine_frames:  # an offset no viewer notices, and within the reading's own spread on short clips
        sync_class = "constant_offset"
    else:
        sync_class = "in_sync"
    return SyncResult(offset, confidence, drift, sync_class, verdict_for(offset, cfg.fine_frames, cfg.noticeable_frames), "", windows)
