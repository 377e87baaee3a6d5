"""retrieval: the speaker's own footage is the mouth library (Video Rewrite, Bregler et al. 1997).

1. Lip shapes of the source are reduced to a few PCA coefficients.
2. A ridge model learned on the source's own soundtrack maps audio (log-mel with
   context, normalised per speaker) to those coefficients, taught the closed mouth
   where the source is silent as the dub's silences will show it; with too little source
   speech, or when the source's sound does not predict its own lips on held-out frames,
   a generic loudness -> opening mapping stands in.
3. Where the dub is silent, and on its /p b m/ (lipdub.phones), the target is the
   speaker's closed mouth.
4. The head's pose moves the lips in the canonical face (a head tipped forward shows
   them nearer the eyes): that part of each lip shape, fitted on where the cheekbones
   sit, is set aside, so mouths are chosen and predicted by what speech does to them,
   and each chosen mouth is then moved to where the target frame's pose puts it.
5. Unit selection by dynamic programming over the nearest source frames: shape match
   plus pose match plus a cost for a mouth blurrier than its opening would have it (teeth
   kept sharp), with a cost for leaving a run of consecutive source frames, so
   real mouth motion is reused whenever it fits, that grows with how differently the
   two lower faces look (a cut is seen as a change of the whole lower face: light,
   shadow, skin), and a cost for showing one frame again that grows with each further
   frame, so no mouth freezes while the dub speaks.
6. Each chosen mouth is warped part of the way (`shape_follow`) towards the shape asked
   for. A speaker mapping's shapes are first spread about their mean as widely as the
   speaker's own lips spread while speaking: a regression's predictions are shrunk
   towards the mean, and the mouths are chosen by those (`with_spread_of`).

With fewer than MIN_LIBRARY_FRAMES usable frames (a still image) there is nothing to
choose from: the one mouth is opened by warping instead (lipdub.mouth_warp).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from lipdub import av_model, mouth_warp
from lipdub import face_geometry as fg
from lipdub.models.base import GenerateRequest, GenerateResult, LazyFrames
from lipdub.tasks.stabilize import mouth_opening

N_COMPONENTS = 5
MIN_SPEECH_FRAMES = 50
MIN_SPEAKER_R = 0.3  # below this held-out correlation the speaker's own mapping is noise: use the generic one
SPEAKER_R_ALPHA = 10.0  # the ridge that held-out check fits: MIN_SPEAKER_R was set with it, whatever the mapping's own alpha
MIN_LIBRARY_FRAMES = 10
# frames of smoothing of the pose points' place before it says where the pose puts the
# lips: a head turns over several frames, and the landmarks' own frame-to-frame jitter,
# moved onto the mouths, made them shake (lips moved 0.84 -> 1.06x as much as the
# source's over the 30 dubs; 0.85x smoothed)
POSE_SIGMA = 2.0
HOLD_COST = 0.15  # showing the same source frame twice is a small freeze
HOLD_GROWTH = 1.0  # each further frame of the same mouth costs this many HOLD_COSTs more
POSE_WEIGHT = 0.02  # per degree of yaw difference
SILENCE_WEIGHT = 4.0  # shape match counts this much more where the dub is silent
CLOSED_PERCENTILE = 10  # source frames this closed or more count as lips that meet
OPEN_WHEN_SHUT_COST = 10.0  # keeps any other frame out of the candidates where lips must meet
GAP_WHEN_SHUT_WEIGHT = 5.0  # among those, per unit of lip gap (over the speaker's 95th percentile): the tightest wins
# per squared unit of opening (over the 95th percentile) between the predicted lips and a
# candidate's: the opening is what a viewer reads first, and in the PCA distance it is one
# direction among five (dubs' predict r median 0.71 -> 0.74, 16 -> 20 of 30 pairs >= 0.7;
# reconstruction opening r 0.44 -> 0.51; benchmarks/quality.py)
OPENING_WEIGHT = 3.0
# most a speaker mapping's predictions are spread out to the spread of the speaker's own
# speaking mouths (`with_spread_of`): guards a dub whose sound the mapping hardly moves on
MAX_SPREAD = 3.0
# per unit of log Laplacian variance that a mouth is blurrier than the speaker's mouths as
# open as it (`softness`): motion blur and focus, so the teeth stay sharp. anchor-man's dubs
# read 0.85-1.02x the source's mouth sharpness without it, 0.91-1.04x with it; at 1.0,
# 0.93-1.06x, but the dubs' mouths followed their sound less clearly (the sync measure's
# margin between the right lag and the best lag 6 or more frames away, smallest of the
# 30 dubs: 0.18 without, 0.16 at 0.5, 0.11 at 1.0)
SOFTNESS_WEIGHT = 0.5
LOOK_SIZE = (32, 16)  # a lower face in a glance: grey thumbnails this many px wide and high
LOOK_DIMS = 16  # of which the leading principal components are compared


class RetrievalGenerator:
    name = "retrieval"

    def __init__(self, context_frames: int = 2, ridge_alpha: float = 100.0, candidates: int = 24, jump_cost: float = 0.6, look_weight: float = 1.0, shape_follow: float = 0.5):
        self.context = context_frames
        self.alpha = ridge_alpha
        self.k = candidates
        self.jump_cost = jump_cost
        self.look_weight = look_weight
        self.shape_follow = shape_follow

    def generate(self, req: GenerateRequest) -> GenerateResult:
        usable = np.flatnonzero(req.usable if req.library_frames is None else req.usable & req.library_frames)
        if len(usable) == 0:  # tiny or profile faces throughout: pass everything through
            n_out = len(req.target)
            return GenerateResult(mouths=LazyFrames.of_library(req.library, req.target), chosen=np.full(n_out, -1), predicted_opening=np.zeros(n_out, np.float32), mapping="none")
        if len(usable) < MIN_LIBRARY_FRAMES:  # a still image (or a few frames): nothing to choose from
            return self._open_one(req, usable)
        shapes = req.lips.reshape(len(req.lips), -1)
        mean = shapes[usable].mean(axis=0)
        _, sv, vt = np.linalg.svd(shapes[usable] - mean, full_matrices=False)
        comps = vt[: min(N_COMPONENTS, len(usable) - 1, vt.shape[0])]
        coefs = np.zeros((len(shapes), len(comps)))
        coefs[usable] = (shapes[usable] - mean) @ comps.T
        opening = mouth_opening(req.lips)
        # interpolated lips (stabilize.every_nth) are no evidence: of the pose, or of a mouth
        # closed between two real frames that are not
        measured = usable if req.measured is None or not req.measured[usable].any() else usable[req.measured[usable]]
        pose = lip_pose(req.lips, req.pose_points, measured)
        as_filmed = coefs.copy()
        coefs -= pose.reshape(len(shapes), -1) @ comps.T  # what speech does to each mouth; the pose is put back when it is shown

        closed = measured[opening[measured] <= np.percentile(opening[measured], 5)]  # the speaker's most closed lips
        closed_shape = coefs[closed].mean(axis=0)
        predicted, mapping = self._predict(req, coefs, opening, measured, closed_shape)
        # mouths are chosen by the mapping's best guess, where the source has many mouths and
        # runs of them; the warp then takes them out to the speaker's own range of motion.
        # Chosen by the spread shapes, the rarer wide and tight mouths cut the runs short
        # (mean run 2.3 -> 2.1 frames; frame-to-frame change within 1.2x on 23 -> 19 of 30 dubs)
        asked = with_spread_of(predicted, coefs[measured[req.source_speech[measured]]], req.dub_speech) if mapping == "speaker" else predicted.copy()
        shut_enough = np.zeros(len(opening), bool)
        shut_enough[measured] = opening[measured] <= np.percentile(opening[measured], CLOSED_PERCENTILE)
        shut = ~req.dub_speech if req.dub_closures is None else ~req.dub_speech | req.dub_closures
        predicted[shut] = asked[shut] = closed_shape

        def lips_of(c: np.ndarray) -> np.ndarray:  # lip landmarks (n, 40, 2) of PCA coefficients
            return (c @ comps + mean).reshape(len(c), -1, 2)

        pred_open = mouth_opening(lips_of(predicted))
        p95 = max(float(np.percentile(opening[measured], 95)), 1e-6)
        soft = SOFTNESS_WEIGHT * softness(req.library, req.lips, usable, opening / p95)
        look = look_of(req.library, usable) if self.look_weight > 0 else None
        chosen = self._select(predicted, coefs, as_filmed, req, usable, shut, shut_enough, opening / p95, pred_open / p95, soft, look)

        has_target = req.usable[req.target]
        chosen = np.where(has_target, chosen, -1)
        shown = np.where(has_target, chosen, req.target)
        moves = pose_moves(req.lips, shown, pose[req.target] - pose[shown])
        mouths, lips = LazyFrames.of_library(req.library, shown), req.lips[shown]
        if self.shape_follow > 0:
            # the filmed mouth taken part of the way to the shape the sound asks for
            reshape = self.shape_follow * ((asked - coefs[shown]) @ comps).reshape(len(shown), -1, 2)
            lips = lips + np.where(has_target[:, None, None], reshape, 0.0)
            mouths = _reshaped(mouths, req.lips[shown], lips)
        return GenerateResult(mouths=mouths, chosen=chosen, predicted_opening=mouth_opening(lips_of(asked)).astype(np.float32), mapping=mapping, moves=moves, lips=lips.astype(np.float32))

    def _open_one(self, req: GenerateRequest, usable: np.ndarray) -> GenerateResult:
        """Every mouth from the source's most closed frame, warped to the opening the dub's
        loudness asks for (closed in its silences and on its /p b m/)."""
        opening = mouth_opening(req.lips)
        base = int(usable[np.argmin(opening[usable])])
        lips = req.lips[base] - library_corner(req.library)
        width = mouth_warp.mouth_width(lips)
        asked = mouth_warp.openings_for(req.dub_audio.mean(axis=1), req.dub_speech, width)
        if req.dub_closures is not None:
            asked[req.dub_closures] = 0.0  # the photo's lips meet on /p b m/ as in silence
        has_target = req.usable[req.target]
        # the photo's own gap (lips caught apart mid-word) counts towards the opening asked
        # for: less is reached by closing it by warping, with nothing painted; only more is
        # opened further. A gap wider than the loudest speech asks for is the loudest
        # speech's: the real open mouth shows as it is, the warps stay within its range.
        gap = max(float(opening[base]), 0.0)
        asked = asked * max(1.0, gap / (mouth_warp.WIDEST * width))
        photo = np.asarray(req.library[base])

        def mouth(j: int) -> np.ndarray:
            if not has_target[j]:
                return np.asarray(req.library[req.target[j]])
            if asked[j] <= gap:
                return mouth_warp.raise_jaw(photo, lips, 1.0 - float(asked[j]) / max(gap, 1e-6))
            return mouth_warp.open_mouth(photo, lips, float(asked[j]) - gap)

        chosen = np.where(has_target, base, -1)
        return GenerateResult(mouths=LazyFrames.made(len(req.target), photo.shape, mouth), chosen=chosen, predicted_opening=asked.astype(np.float32), mapping="warp")

    def _predict(self, req: GenerateRequest, coefs: np.ndarray, opening: np.ndarray, usable: np.ndarray, closed_shape: np.ndarray) -> tuple[np.ndarray, str]:
        """Each output frame's pose-free lip shape from the dub's sound, learnt on `usable`
        (measured) source frames: interpolated lips are a straight line between two real
        ones, and a mapping fitted on them learns mouths that never were. `closed_shape`: the
        speaker's closed mouth, as the dub's silences will show it."""
        dub_x = av_model.with_context(av_model.normalise(req.dub_audio, req.dub_speech), self.context)
        if req.source_audio is not None and req.source_speech is not None and (req.source_speech[usable]).sum() >= MIN_SPEECH_FRAMES:
            src_x = av_model.with_context(av_model.normalise(req.source_audio, req.source_speech), self.context)
            if self._speaker_r(src_x, opening, usable) >= MIN_SPEAKER_R:
                # the mapping learns the mouth the dub will show: closed where the source is
                # silent, as every dub's silences are. Learnt as filmed, a speaker who pauses
                # with her lips apart got a mapping that opened the mouth as the dub's voice
                # fell quiet, and the shut silences then broke the mouth's course through the
                # sound (blue-woman's six dubs: predict r 0.49-0.72)
                taught = coefs.copy()
                taught[~req.source_speech] = closed_shape
                model = av_model.Ridge(self.alpha).fit(src_x[usable], taught[usable])
                return model.predict(dub_x), "speaker"
        # generic: louder -> more open, mapped onto this speaker's own range of openings
        loud = req.dub_audio.mean(axis=1)
        ranks = np.argsort(np.argsort(loud)) / max(len(loud) - 1, 1)
        target_open = np.quantile(opening[usable], ranks)
        slope = np.linalg.lstsq(np.c_[opening[usable], np.ones(len(usable))], coefs[usable], rcond=None)[0]
        return np.c_[target_open, np.ones(len(loud))] @ slope, "generic"

    def _speaker_r(self, src_x: np.ndarray, opening: np.ndarray, usable: np.ndarray) -> float:
        """How well the source's own sound predicts its lips on frames the model did not see."""
        valid = np.zeros(len(opening), bool)
        valid[usable] = True
        pred = av_model.cross_predict(src_x, opening[:, None], valid, SPEAKER_R_ALPHA, block=25)
        return av_model.correlation(pred[usable, 0], opening[usable])

    def _select(self, predicted: np.ndarray, coefs: np.ndarray, as_filmed: np.ndarray, req: GenerateRequest, usable: np.ndarray, shut: np.ndarray, shut_enough: np.ndarray, opened: np.ndarray, wanted: np.ndarray, soft: np.ndarray | None = None, look: np.ndarray | None = None) -> np.ndarray:
        """Viterbi over the k nearest usable source frames of every output frame (opened: each source
        frame's opening, wanted: each output frame's predicted opening, both over the 95th percentile;
        soft: what showing each source frame's mouth costs for its blur; look: each source frame's
        lower face at a glance, `look_of`, for what a cut from one to another shows).

        Mouths are matched on `coefs`, their shapes with the pose set aside; a cut between
        two is charged on `as_filmed`, their shapes with it: moving a mouth puts its lips in
        place, but the rest of a lower face filmed in another pose still changes at the cut
        (charged on the pose-free shapes, the lips of three real dubs moved 1.20x as much as
        the source's at worst; as filmed, 1.09x)."""
        scale = float((coefs[usable] ** 2).sum(axis=1).mean()) + 1e-6
        gap = np.clip(opened, 0, None)  # lips pressed together (a negative opening) meet no tighter than touching ones
        k = min(self.k, len(usable))
        cands = np.zeros((len(predicted), k), np.int64)  # source frame indices
        unit = np.zeros((len(predicted), k))
        for lo in range(0, len(predicted), 512):  # blocks keep memory flat on long clips
            hi = lo + 512
            dist = ((predicted[lo:hi, None, :] - coefs[usable][None, :, :]) ** 2).sum(axis=2) / scale
            dist += POSE_WEIGHT * np.abs(req.yaw_deg[usable][None, :] - np.nan_to_num(req.yaw_deg[req.target[lo:hi]])[:, None])
            dist += OPENING_WEIGHT * (wanted[lo:hi, None] - opened[usable][None, :]) ** 2
            if soft is not None:
                dist += soft[usable][None, :]
            # silence and /p b m/ take lips that really meet, whatever the run
            dist[shut[lo:hi]] += OPEN_WHEN_SHUT_COST * ~shut_enough[usable] + GAP_WHEN_SHUT_WEIGHT * gap[usable]
            pos = np.argpartition(dist, k - 1, axis=1)[:, :k]
            cands[lo:hi], unit[lo:hi] = usable[pos], np.take_along_axis(dist, pos, axis=1)
        unit[shut] *= SILENCE_WEIGHT  # a mouth open in silence or on a /p b m/ is worse than a cut
        n_out = len(predicted)
        total = unit[0].copy()
        held = np.zeros(k)  # how many frames the best path into each candidate has shown it already
        back = np.zeros((n_out, k), np.int64)
        nxt = np.minimum(np.arange(len(coefs)) + 1, len(coefs) - 1)
        for j in range(1, n_out):
            prev, cur = cands[j - 1][:, None], cands[j][None, :]
            seam = ((as_filmed[nxt[prev]] - as_filmed[cur]) ** 2).sum(axis=2) / scale
            if look is not None:
                seam += self.look_weight * ((look[nxt[prev]] - look[cur]) ** 2).sum(axis=2)
            # a held mouth costs more the longer it is held: a mouth frozen while the dub speaks
            # is what a viewer sees (up to 22 frames on map-man with a flat cost)
            hold = HOLD_COST * (1 + HOLD_GROWTH * held[:, None])
            trans = np.where(cur == prev + 1, 0.0, np.where(cur == prev, hold, self.jump_cost + seam))
            step = total[:, None] + trans
            back[j] = step.argmin(axis=0)
            total = step.min(axis=0) + unit[j]
            held = np.where(cands[j] == cands[j - 1][back[j]], held[back[j]] + 1, 0)
        path = np.zeros(n_out, np.int64)
        path[-1] = int(total.argmin())
        for j in range(n_out - 1, 0, -1):
            path[j - 1] = back[j, path[j]]
        return cands[np.arange(n_out), path]


def library_corner(library: LazyFrames | np.ndarray) -> np.ndarray:
    """Where the library's patches sit in the canonical face (x, y of their top left): the
    mouth box, the lower half of the canonical square (generate.canonical_library)."""
    x0, y0, _, _ = fg.mouth_box(fg.side_of_mouth_box(library.shape[1]))
    return np.array([x0, y0])


def _reshaped(library: LazyFrames | np.ndarray, filmed: np.ndarray, shaped: np.ndarray) -> LazyFrames:
    """Each output mouth `library[j]`, its lips moved from `filmed[j]` to `shaped[j]` (40, 2, canonical px)."""
    corner = library_corner(library).astype(np.float32)
    return LazyFrames.made(len(filmed), tuple(library.shape[1:]), lambda j: mouth_warp.reshape_lips(np.asarray(library[j]), filmed[j] - corner, shaped[j] - corner))


def look_of(library: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """(n, LOOK_DIMS) each usable source frame's lower face as a viewer takes it in at a
    glance: grey, LOOK_SIZE px, its leading principal components over the usable frames
    (0 elsewhere), scaled so two of them are 1 apart on average (squared). Light and
    shadow that differ between two frames show at a cut between them whatever their
    lips do."""
    thumbs = np.zeros((len(library), LOOK_SIZE[0] * LOOK_SIZE[1]), np.float64)
    for i in usable:
        thumbs[i] = cv2.resize(cv2.cvtColor(np.asarray(library[i]), cv2.COLOR_RGB2GRAY), LOOK_SIZE, interpolation=cv2.INTER_AREA).ravel()
    mean = thumbs[usable].mean(axis=0)
    _, _, vt = np.linalg.svd(thumbs[usable] - mean, full_matrices=False)
    look = np.zeros((len(library), min(LOOK_DIMS, len(vt))))
    look[usable] = (thumbs[usable] - mean) @ vt[: look.shape[1]].T
    return look / np.sqrt(2 * float((look[usable] ** 2).sum(axis=1).mean()) + 1e-6)  # twice the mean squared norm: two frames' mean squared distance


def softness(library: np.ndarray, lips: np.ndarray, usable: np.ndarray, opened: np.ndarray) -> np.ndarray:
    """(n,) how much blurrier each usable source mouth is than the speaker's mouths as open
    as it: the log Laplacian variance inside its lips' box, below a straight-line fit on
    the opening (an open mouth shows teeth and reads sharper, so sharpness alone would
    pick open mouths). 0 where a mouth is as sharp as its opening predicts or sharper."""
    h, w = library.shape[1:3]
    corner = library_corner(library)
    sharp = np.full(len(lips), np.nan)
    for i in usable:
        (a, b), (c, d) = np.floor(lips[i].min(axis=0) - corner).astype(int), np.ceil(lips[i].max(axis=0) - corner).astype(int)
        box = np.asarray(library[i, max(b, 0) : min(d, h), max(a, 0) : min(c, w)])  # the lips' box alone off the memory-mapped library
        if box.shape[0] > 2 and box.shape[1] > 2:
            sharp[i] = np.log(cv2.Laplacian(cv2.cvtColor(box, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var() + 1e-3)
    ok = np.isfinite(sharp) & np.isfinite(opened)
    out = np.zeros(len(lips))
    if ok.sum() >= MIN_LIBRARY_FRAMES:
        line = np.polyfit(opened[ok], sharp[ok], 1)
        out[ok] = np.clip(np.polyval(line, opened[ok]) - sharp[ok], 0, None)
    return out


def with_spread_of(predicted: np.ndarray, reference: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`predicted` shapes spread about their mean over the frames `where` as widely as the
    `reference` shapes spread about theirs (total variance; at most MAX_SPREAD times).

    A ridge regression's predictions are shrunk towards the mean: what the sound does not
    explain of the speaker's own lips is left out, and the mapping's mouths moved half as
    much as the speaker's (blue-woman's dubs: 0.4-0.5x the source's lip motion). Mouths that
    hardly move read as mumbling, and the dub's silences and /p b m/, shut all the way,
    then dwarfed the speech's own motion: on 5 s English dubs the sound predicted the
    mouths shown at r 0.49-0.67 (0.83-0.87 on clips the loudness mapping drives, which
    spans the speaker's whole range). Speech synthesis restores the same loss of variance
    ("global variance", Toda and Tokuda 2007)."""
    if where.sum() < 2 or len(reference) < 2:
        return predicted
    mean = predicted[where].mean(axis=0)
    spread = np.sqrt(reference.var(axis=0).sum() / max(float(predicted[where].var(axis=0).sum()), 1e-12))
    out = predicted.copy()
    out[where] = mean + (predicted[where] - mean) * min(spread, MAX_SPREAD)
    return out


def lip_pose(lips: np.ndarray, pose_points: np.ndarray | None, usable: np.ndarray) -> np.ndarray:
    """(n, 40, 2) how far the head's pose moves each frame's lips in the canonical face.

    A linear fit of the lip landmarks on where the pose points sit (face_geometry.
    POSE_POINTS, smoothed over a few frames), beside the lips' opening so the speech's own
    jaw drop is not taken for pose. Zero without pose points."""
    pose = np.zeros(lips.shape, np.float64)
    if pose_points is None:
        return pose
    centre = pose_points.mean(axis=1)
    found = np.isfinite(centre).all(axis=1) & np.isfinite(lips).all(axis=(1, 2))
    fit_on = usable[found[usable]]
    if len(fit_on) < MIN_LIBRARY_FRAMES:
        return pose
    at = np.flatnonzero(found)
    centre = gaussian_filter1d(np.stack([np.interp(np.arange(len(centre)), at, centre[at, k]) for k in range(2)], axis=1), POSE_SIGMA, axis=0, mode="nearest")
    dev = np.where(found[:, None], centre - centre[fit_on].mean(axis=0), 0.0)
    x = np.c_[dev[fit_on], mouth_opening(lips[fit_on]), np.ones(len(fit_on))]
    fit = np.linalg.lstsq(x, lips[fit_on].reshape(len(fit_on), -1), rcond=None)[0]
    return (dev @ fit[:2]).reshape(lips.shape)


def pose_moves(lips: np.ndarray, shown: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(n, 2, 3) canonical affine map taking each shown mouth's lips closest to their
    lips shifted by pose, so the patch moves as a whole (a tipped head also squashes the
    mouth's height; a similarity map alone gave map-man's reconstruction 12.7 % below
    random against 14.9 %)."""
    moves = np.tile(np.eye(2, 3), (len(shown), 1, 1))
    for j, (src, by) in enumerate(zip(lips[shown], shift)):
        if np.isfinite(src).all() and np.abs(by).max() > 1e-3:
            moves[j] = np.linalg.lstsq(np.c_[src, np.ones(len(src))], src + by, rcond=None)[0].T
    return moves
