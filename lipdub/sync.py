"""Audio-visual sync measurement: how far, and how steadily, sound leads or trails the lips.

At each candidate lag a ridge model predicts lip shape from audio (log-mel with
context) and is scored on held-out folds (Slaney & Covell, "FaceSync", NIPS 2000).
The middle of the peak of best-predicting lags is the offset; the same held-out
predictions scored per window give offsets over time (the plot). Drift is fitted on
the whole clip: the audio clock's rate error that, with a lag, predicts the lips best.
Sign: positive = audio late.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from lipdub import av_model
from lipdub import face_geometry as fg
from lipdub.audio_features import LogMel, speech_mask_frames
from lipdub.infra.config import DriftConfig

N_COMPONENTS = 3  # modes of each view of the mouth's motion
# Audio context either side of a frame: too wide and the regression absorbs a lag (a
# flat-topped score curve), too narrow and it misses how the mouth anticipates sound.
# Two frames read the real clips best (benchmarks/sync_doctor.py).
CONTEXT_FRAMES = 2
LAG_STEP_FRAMES = 0.5  # lags are sampled from the audio at half-frame steps
MIN_DRIFT_SPAN_S = 20.0  # shorter clips drift too little to tell a rate from noise
MAX_RATE, RATE_STEP = 0.02, 0.001  # audio clock rate errors searched: +-2 % in 0.1 % steps
RATE_COARSE_LAG = 2  # frames between the mid-clip lags each rate is first tried at
RATE_REFINE_CELLS = 4  # best (rate, lag) pairs of that first pass then tried to the frame
RATE_FINE_PER_CLIP = 4  # then rates between grid steps, each drifting 1/this frame more over the clip
RESCORE_SPAN_FRAMES = 12  # lags either side of the peak scored again on the frames all of them count
RATE_REFINE_SPAN = 6  # frames either side of the rate's best lag where the middle of its peak is read
MIN_RATE_GAIN = 0.02  # a drift must predict the lips this much better than none
MIN_WINDOW_SPEECH = 0.3  # a window that is mostly silence has no offset to read
# held-out score at the reading below which it stands but is flagged: flag-woman's readings
# scored 0.15-0.24 and missed some shifts by 3 frames while her slow mouth motion was fitted
# too; since, no shift of a real clip is flagged (benchmarks/sync_doctor.py). Not the
# confidence (peak minus the curve's median): a drift smears the no-drift curve and a loop
# lifts its median, both lowering it.
WEAK_FIT = 0.25
# the sound is fitted to two views of the mouth's motion, half the weight each: as it is, and
# with its motion slower than this taken out (a smile, a head turn the canonical map left
# in, a slow drift of the landmarks). On flag-woman the slow motion lines up with the
# sound's swell at a wrong lag (as it is, her shifts of +5..+9 frames read 2.6-3.0 late);
# in a dub it is sync, since the mouths follow the dub's loudness phrase by phrase (the
# second view alone read five of 30 dubs 1.1-2.6 frames off). See benchmarks/HISTORY.md.
SLOW_MOTION_S = 0.5
# a second peak of the curve, at least RIVAL_APART_FRAMES from the reading and apart from its
# peak (the curve dips below half height between them), that scores within RIVAL_MARGIN
# of it: the sound fits two offsets about as well, and which wins turns on
# noise (a 5 s dub of glasses-woman's close-up read +1 or +11 frames as small changes to
# the generator tipped two humps; none of the 30 dubs of benchmarks/quality.py nor the
# five sources has such a rival)
RIVAL_MARGIN = 0.05
RIVAL_APART_FRAMES = 4.0
PADDING_LEVEL = 1e-4  # below -80 dBFS at the ends of a track: digital silence a shift or remux padded in


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
    offset_at_zero_frames: float = float("nan")  # with growing drift: the fitted offset at audio time 0

    def offset_at(self, t_s: float) -> float:
        """The fitted drift line's offset at audio time t_s (frames)."""
        return drift_line(self.offset_at_zero_frames, self.drift_frames_per_min, t_s)


def drift_line(offset_at_zero_frames: float, drift_frames_per_min: float, t_s: float) -> float:
    """Offset at audio time t_s of a clip that drifts linearly from offset_at_zero_frames."""
    return offset_at_zero_frames + drift_frames_per_min / 60.0 * t_s


def worst_on_drift_line(offset_at_zero_frames: float, drift_frames_per_min: float, start_s: float, end_s: float) -> float:
    """The drift line's offset furthest from 0 between start_s and end_s (signed): a viewer
    sees the worst of a drifting clip, which may be fine at one end and far off at the other."""
    return max((drift_line(offset_at_zero_frames, drift_frames_per_min, t) for t in (start_s, end_s)), key=abs)


def mouth_features(lips: np.ndarray) -> np.ndarray:
    """Articulatory distances (inner and outer opening, widths, side openings) per frame.

    Distances between lip points are blind to the head moving the whole mouth, which
    a raw lip-contour PCA mistakes for speech."""
    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(lips[:, fg.LIPS.index(a)] - lips[:, fg.LIPS.index(b)], axis=1)

    return np.stack([dist(13, 14), dist(0, 17), dist(61, 291), dist(78, 308), dist(82, 87), dist(312, 317)], axis=1)


def without_slow_motion(feats: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """feats (frames, d) less their moving average over `window` frames, taken over the valid
    frames only (invalid frames come back unchanged)."""
    kept = np.where(valid[:, None], feats, 0.0)
    total = uniform_filter1d(kept, window, axis=0, mode="constant")
    count = uniform_filter1d(valid.astype(float), window, mode="constant")
    return np.where(valid[:, None], feats - total / np.maximum(count, 1e-9)[:, None], feats)


def _shape_targets(lips: np.ndarray, valid: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """The main modes of the mouth's motion, as it is and without its slow part (unit
    variance each), and their weights: each view's share of its motion, halved."""
    feats = mouth_features(lips)
    views = (_modes(feats, valid), _modes(without_slow_motion(feats, valid, max(3, int(round(SLOW_MOTION_S * fps)) | 1)), valid))
    return np.concatenate([y for y, _ in views], axis=1), np.concatenate([w / 2 for _, w in views])


def _modes(feats: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Main modes of the motion of feats (unit variance) and their share of the motion."""
    z = np.zeros_like(feats)
    z[valid] = (feats[valid] - feats[valid].mean(axis=0)) / (feats[valid].std(axis=0) + 1e-6)
    _, sv, vt = np.linalg.svd(z[valid], full_matrices=False)
    k = min(N_COMPONENTS, len(sv))
    y = np.zeros((len(z), N_COMPONENTS))
    y[valid, :k] = z[valid] @ vt[:k].T
    weights = np.zeros(N_COMPONENTS)
    weights[:k] = sv[:k] ** 2
    return y / (y[valid].std(axis=0) + 1e-6), weights / weights.sum()


def recorded_span_s(audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Where the recording starts and ends, without the digital silence padded on at either end.

    Sliding a track pads it with zeros, and zeros beside speech are a cue no real sound
    gives: lips that are still at the clip's end line up with padding at whatever lag
    puts it there. (A slid map-man read +11 frames off a score peak the padding made.)"""
    loud = np.flatnonzero(np.abs(audio) > PADDING_LEVEL)
    if not len(loud):
        return 0.0, 0.0
    return loud[0] / sample_rate, (loud[-1] + 1) / sample_rate


def weak_reason(fit: float) -> str:
    """Why a reading may be a few frames off (fit: the held-out score at the reading), or
    nothing if the evidence is clear."""
    if fit >= WEAK_FIT:
        return ""
    return f"weak evidence (the sound predicts the lips at {fit:.2f} < {WEAK_FIT}): the offset may be a few frames off, check it by eye"


def rival_reason(scores: np.ndarray, lags: np.ndarray, best: int) -> str:
    """Why a reading may be the wrong one of two (scores: the no-drift curve, best: the
    index of its peak the reading sits on), or nothing if no other peak comes close."""
    inner = _local_maxima(scores)
    level = _half_height(scores, best)

    def apart(i: int) -> bool:
        """Another peak, not a second top of the same plateau: the curve dips below half height between them."""
        lo, hi = sorted((i, best))
        return abs(lags[i] - lags[best]) >= RIVAL_APART_FRAMES and scores[lo : hi + 1].min() < level

    rivals = np.array([i for i in inner if scores[i] >= scores[best] - RIVAL_MARGIN and apart(i)], int)
    if not len(rivals):
        return ""
    other = lags[rivals[scores[rivals].argmax()]]
    return f"two offsets fit the sound about as well ({lags[best]:+.1f} and {other:+.1f} frames): check it by eye"


def verdict_for(offset: float, fine: int, noticeable: int) -> str:
    a = abs(offset)
    return "fine" if a <= fine else "noticeable" if a <= noticeable else "unacceptable"


def _local_maxima(scores: np.ndarray) -> np.ndarray:
    """Indices of the curve's local maxima inside the searched lags (its ends excluded)."""
    return np.flatnonzero((scores[1:-1] >= scores[:-2]) & (scores[1:-1] >= scores[2:])) + 1


def _half_height(scores: np.ndarray, best: int) -> float:
    """Half the height of the peak at index best above the curve's median: where its flanks are read."""
    return float((scores[best] + np.median(scores)) / 2)


def _inner_peak(scores: np.ndarray) -> int | None:
    """The highest local maximum inside the searched lags, if any.

    A curve still rising at the end of the range has no peak there: the true lag lies
    beyond it, or the clip's sound repeats (a loop, a refrain) and matches far off."""
    inner = _local_maxima(scores)
    return int(inner[scores[inner].argmax()]) if len(inner) else None


def _peak(scores: np.ndarray, lags: np.ndarray, best: int | None = None) -> float:
    """The middle of the peak at index best (default: the highest): halfway between where the
    curve, on either side, falls through half its height above the median score.

    On real clips the curve is often a plateau two to four frames wide whose top is noise
    (map-man's reads within 0.05 from -0.5 to +3.5 frames), and its highest point wanders
    across the plateau as the sound shifts; its flanks do not. Under known shifts of the
    sound the argmax strayed up to 3 frames from where it should be, the half-height
    middle at most 0.5 on four of the five real clips; and on the untouched clips it
    lands 0.3 frames on average from the lips' closing on /p b m/ (the argmax 0.7).
    See benchmarks/sync_doctor.py."""
    best = int(scores.argmax()) if best is None else best
    level = _half_height(scores, best)

    def crossing(step: int) -> float:
        i = best
        while 0 <= i + step < len(scores) and scores[i + step] >= level:
            i += step
        if not 0 <= i + step < len(scores):
            return float(lags[i])  # still above half height at the range's end
        a, b = scores[i], scores[i + step]
        return float(lags[i] + (a - level) / (a - b) * (lags[i + step] - lags[i]))

    return (crossing(-1) + crossing(1)) / 2


def _peak_on_shared_frames(scores: np.ndarray, lags: np.ndarray, best: int, counted: np.ndarray, score_over, fps: float) -> float:
    """The middle of the peak at index best, with the lags around it scored on the same frames.

    Each lag counts only frames whose audio lies inside the recording, so lags far apart
    are scored on different frames, and a lag that happens to drop a hard stretch (a
    speech onset at the clip's edge) scores higher for it. Scored on the frames every lag
    within RESCORE_SPAN_FRAMES counts, readings of a shifted clip stay with the shift:
    anchor-man's and glasses-woman's within a frame of it 76 -> 100 % and 90 -> 100 %
    (benchmarks/sync_doctor.py). Too few shared frames (a very short clip): the plain curve.
    score_over(idx) is every lag's score over frames idx (those of them the lag counts).

    The rescoring moves the reading within the peak, not to another one: on fewer frames a
    second hump a syllable away can come out higher (lipdub's anchor-man x en-male-5s dub:
    -1.5 frames over all frames, +3.5 on the shared ones, and the dub read +3.2,
    "noticeable"; its 4 s windows read +0.7 and -1.0). The top of the same peak is
    climbed to from the first reading's lag."""
    near = np.flatnonzero(np.abs(lags - lags[best]) <= RESCORE_SPAN_FRAMES)
    shared = np.flatnonzero(np.logical_and.reduce(counted[near]))
    if len(shared) < max(2 * fps, 30):
        return _peak(scores, lags, best)
    rescored = score_over(shared)[near]
    return _peak(rescored, lags[near], _climb(rescored, int(np.flatnonzero(near == best)[0])))


def _window_peak(scores: np.ndarray, lags: np.ndarray, expected: float | None) -> tuple[float, float] | None:
    """A window's offset and score: the middle of the peak of its curve that the lag
    `expected` (the whole clip's reading there) lies on, or with no clip reading its highest
    peak; None when that peak's top is the searched range's end (no peak inside it).

    A window of a few seconds scores a lag a syllable or two away about as high as the
    right one: a copy of glasses-woman read +3.3 frames on the whole clip while its one
    4 s window read -13, at the far end of a curve that rises and falls with the syllables.
    The whole clip says which peak is this clip's; the window says where on it its stretch
    of the clip sits (a drift moves it along)."""
    top = int(scores.argmax()) if expected is None else _climb(scores, int(np.abs(lags - expected).argmin()))
    if top in (0, len(lags) - 1):
        return None
    return _peak(scores, lags, top), float(scores[top])


def _climb(scores: np.ndarray, i: int) -> int:
    """The top of the peak index i lies on: uphill, to the higher neighbour, while there is one."""
    while True:
        up = [j for j in (i - 1, i + 1) if 0 <= j < len(scores) and scores[j] > scores[i]]
        if not up:
            return i
        i = max(up, key=lambda j: scores[j])


def mode_weights(shares: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """How much each mode of the mouth's motion counts in a score: its share of the motion
    times how well sound predicts it where it is best predicted (rows: its held-out r at each
    lag, or lag and rate, tried). A large mode the audio cannot explain (head nods the
    canonical map missed) is noise."""
    w = shares * np.clip(rows.max(axis=0), 0, None) ** 2
    return w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))


def _rate_search(modes_at, weigh, frame_times_s: np.ndarray, fps: float, max_lag: int) -> tuple[float, float, float, np.ndarray]:
    """The audio clock's rate error that best explains the whole clip, the lag at the first
    frame that goes with it, the score of the pair, and the mode weights it was scored with.

    A constant rate mismatch (44.1 vs 48 kHz, 29.97 vs 30 fps, a stretched dub) is one
    number for the whole clip, so it is fitted on the whole clip, lag and rate together,
    not read off a line through noisy per-window offsets. Every rate is tried with its
    mid-clip lag anywhere in the searched range (every RATE_COARSE_LAG frames, then the
    best few to the frame): drift smears the no-drift score curve, whose top can lie far
    from the drifting clip's real mid-clip lag (map-man stretched by -0.5 %: 8 frames).

    modes_at(lag, rate): each mode's held-out r. weigh(rows): the modes' weights from the
    rows of that first pass. A drift smears a fast mode's curve and hardly a slow one's, so
    weights read off the no-drift curve alone hand a drifting clip to its slow modes
    (map-man looped and stretched by 1 % read 0.65 %, 7 frames off, on his slow second mode)."""
    mid_s = (frame_times_s[-1] - frame_times_s[0]) / 2
    rates = [r for r in np.arange(-MAX_RATE, MAX_RATE + RATE_STEP / 2, RATE_STEP) if abs(r) >= RATE_STEP / 2]
    cells = [(float(rate), float(mid - rate * mid_s * fps)) for rate in rates for mid in np.arange(-max_lag, max_lag + 0.5, RATE_COARSE_LAG)]
    rows = np.array([modes_at(lag, rate) for rate, lag in cells])
    weights = weigh(rows)

    def score_at(lag: float, rate: float) -> float:
        return float(modes_at(lag, rate) @ weights)

    coarse = sorted(zip(rows @ weights, *zip(*cells)), reverse=True)
    top, best_rate, start_lag = (float(v) for v in coarse[0])
    for _, rate, lag in coarse[:RATE_REFINE_CELLS]:
        for near in np.arange(lag - RATE_COARSE_LAG + 1, lag + RATE_COARSE_LAG - 0.5, 1.0):
            if near != lag and (value := score_at(float(near), rate)) > top:
                top, best_rate, start_lag = value, rate, float(near)
    # between grid rates: steps that drift the clip's end by a quarter frame, the mid-clip lag kept
    fine = 1.0 / (RATE_FINE_PER_CLIP * 2 * mid_s * fps)
    if fine < RATE_STEP:
        mid_lag = start_lag + best_rate * mid_s * fps
        for rate in best_rate + np.arange(-RATE_STEP + fine, RATE_STEP - fine / 2, fine):
            centre = round(mid_lag - rate * mid_s * fps)
            for lag in (centre - 1.0, float(centre), centre + 1.0):
                if (value := score_at(lag, float(rate))) > top:
                    top, best_rate, start_lag = value, float(rate), lag
    return best_rate, start_lag, top, weights


def measure_sync(lips: np.ndarray, valid: np.ndarray, audio: np.ndarray, sample_rate: int, frame_times_s: np.ndarray, fps: float, cfg: DriftConfig = DriftConfig(), find_drift: bool = True) -> SyncResult:
    """Sync of one clip: lips (frames, 40, 2) canonical, mono audio, each frame's time on the audio's clock.

    find_drift=False reads the offset alone: no rate search, which costs hundreds of fits on a long clip."""
    max_lag, calibration_frames = cfg.max_lag_frames, cfg.calibration_frames
    def cannot(reason: str) -> SyncResult:
        return SyncResult(float("nan"), 0.0, float("nan"), "cannot_tell", "unknown", reason, [])

    if valid.sum() < max(2 * fps, 30):
        return cannot("too few frames with a visible mouth")
    speech = speech_mask_frames(audio, sample_rate, frame_times_s)
    if len(audio) < sample_rate // 2 or speech.mean() < 0.1:
        return cannot("no speech")
    y, shares = _shape_targets(lips, valid, fps)
    mel = LogMel(audio, sample_rate)
    lags = np.arange(-max_lag, max_lag + LAG_STEP_FRAMES / 2, LAG_STEP_FRAMES)
    block = max(10, int(round(fps)))

    t0 = float(frame_times_s[0])

    audio_start_s, audio_end_s = recorded_span_s(audio, sample_rate)
    reach_s = (CONTEXT_FRAMES + 0.5) / fps

    def features(lag: float, rate: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Audio heard `lag` frames after each frame's time, on a clock running `rate` faster
        than the picture's: what lines up if the audio is that late and drifts that fast.
        Also which frames count at that lag: those whose heard audio, with its context, lies
        inside the recording (outside it there is no evidence, only padding)."""
        heard = t0 + (frame_times_s - t0) * (1.0 + rate) + lag / fps
        counts = valid & (heard - reach_s >= audio_start_s) & (heard + reach_s <= audio_end_s)
        return av_model.with_context(av_model.normalise(mel.at(heard, 1 / fps), speech), CONTEXT_FRAMES), counts

    def predict(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Held-out predictions of the mouth modes from audio features, fitted on frames that count."""
        return av_model.cross_predict(x, y, counts, alpha=30.0, block=block)

    def mode_r(p: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.array([av_model.correlation(p[idx, c], y[idx, c]) for c in range(y.shape[1])])

    # one lag's audio features at a time: all 61 at once held 16 MB per lag and minute of clip
    preds, counted = np.zeros((len(lags), *y.shape)), np.zeros((len(lags), len(y)), bool)
    for i, lag in enumerate(lags):
        x, counted[i] = features(lag)
        preds[i] = predict(x, counted[i])
    per_mode = np.array([mode_r(p, np.flatnonzero(c)) for p, c in zip(preds, counted)])
    weights = mode_weights(shares, per_mode)

    def score(idx: np.ndarray) -> np.ndarray:
        """The weighted held-out correlation of every lag's predictions over frames idx."""
        return np.array([mode_r(p, idx[c[idx]]) @ weights for p, c in zip(preds, counted)])

    scores = per_mode @ weights
    best = _inner_peak(scores)
    offset = _peak_on_shared_frames(scores, lags, best, counted, score, fps) - calibration_frames if best is not None else float("nan")
    confidence = float(scores[best] - np.median(scores)) if best is not None else 0.0

    def windows_around(expected: Callable[[float], float] | None) -> list[SyncWindow]:
        """Offsets over time, each window read on the peak of its own curve that the clip's
        reading lies on (expected(t): the clip's offset at audio time t, in frames; None:
        the clip has no reading to trust).

        See _window_peak."""
        out = []
        n_win = int(round(cfg.window_s * fps))
        for start in range(0, max(1, len(valid) - n_win + 1), max(1, int(round(cfg.hop_s * fps)))):
            idx = np.arange(start, min(start + n_win, len(valid)))
            idx = idx[valid[idx]]
            if len(idx) < n_win // 2 or speech[idx].mean() < MIN_WINDOW_SPEECH:
                continue
            ws = score(idx)
            t0_s, t1_s = float(frame_times_s[start]), float(frame_times_s[min(start + n_win, len(valid)) - 1])
            reading = _window_peak(ws, lags, None if expected is None else expected((t0_s + t1_s) / 2) + calibration_frames)
            if reading is not None:
                out.append(SyncWindow(t0_s, t1_s, reading[0] - calibration_frames, reading[1]))
        return out

    span_s = frame_times_s[-1] - frame_times_s[0]
    drift, at_zero = float("nan"), float("nan")
    if find_drift and span_s >= MIN_DRIFT_SPAN_S:  # shorter clips drift too little to tell from noise
        def rate_modes(lag: float, rate: float) -> np.ndarray:
            x, counts = features(lag, rate)
            return mode_r(predict(x, counts), np.flatnonzero(counts))

        # before any verdict on the no-drift curve: a drift smears it, even to no peak at all
        rate, start_lag, top, rate_weights = _rate_search(rate_modes, lambda rows: mode_weights(shares, np.vstack([per_mode, rows])), frame_times_s, fps, max_lag)
        no_drift = per_mode @ rate_weights  # the no-drift curve, weighed as the rates were
        drift = rate * fps * 60.0 if top - no_drift.max() >= MIN_RATE_GAIN else 0.0
        if abs(drift) * span_s / 60.0 > 1.5:
            # the lag that goes with the rate, read as the offset is: the middle of its peak, not its top
            around = np.arange(start_lag - RATE_REFINE_SPAN, start_lag + RATE_REFINE_SPAN + LAG_STEP_FRAMES / 2, LAG_STEP_FRAMES)
            start_lag = _peak(np.array([rate_modes(float(lag), rate) @ rate_weights for lag in around]), around)
            at_zero = start_lag - rate * t0 * fps - calibration_frames
            if best is None or confidence < 0.05:  # no reading without drift: the offset mid-clip
                offset = start_lag + rate * span_s / 2 * fps - calibration_frames
                confidence = float(top - np.median(no_drift))
            worst = worst_on_drift_line(at_zero, drift, float(frame_times_s[0]), float(frame_times_s[-1]))
            windows = windows_around(lambda t_s: drift_line(at_zero, drift, t_s))
            return SyncResult(offset, confidence, drift, "growing_drift", verdict_for(worst, cfg.fine_frames, cfg.noticeable_frames), weak_reason(top), windows, at_zero)
    if best is None:
        return cannot(f"audio predicts the lips best at the end of the searched lags (+-{max_lag} frames): no peak inside them")
    if confidence < 0.05:
        return SyncResult(offset, confidence, float("nan"), "cannot_tell", "unknown", "audio does not predict the lips at any lag", windows_around(None))
    windows = windows_around(lambda t_s: offset)
    # within the fine tolerance: no viewer notices, and short clips read that loosely
    sync_class = "constant_offset" if abs(offset) > cfg.fine_frames else "in_sync"
    reason = weak_reason(float(scores[best])) or rival_reason(scores, lags, best)
    return SyncResult(offset, confidence, drift, sync_class, verdict_for(offset, cfg.fine_frames, cfg.noticeable_frames), reason, windows)
