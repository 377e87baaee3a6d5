"""Quality benchmark on real clips: does the dubbed mouth look right, and is the rest untouched?

    python benchmarks/quality.py [--media DIR] [--out DIR] [--clips a,b] [--speech a,b] [--preset NAME] [--config FILE]

Measures, in order of priority (see benchmarks/README.md for why each one):

1. reconstruction: the second half of each clip regenerated from its own audio with
   only the first half as the mouth library; the chosen mouths against the real ones
   (lip landmark distance, inner-lip opening correlation), against random picks;
2. cross-dub: every clip x every speech file but en-60s, dubbed through all nine
   stages; sync offset, how well the dub's audio predicts the output's mouth,
   whether the mouth is closed where the dub is silent, and on English dubs whether
   it closes on /p b m/ (phones from pocketsphinx's word recogniser and aligner);
3. stability and detail of the output's lower face against the source's;
4. preservation of everything above the nose (PSNR), with a plain CRF 18 re-encode
   of the source for reference;
5. identity: a face descriptor's distance from the source, between that of a
   re-encode (0) and that of another clip's person (1);
6. a side-by-side strip PNG per clip.

Prints Markdown tables with the targets beside each number and an overall line;
writes results.jsonl (and the strips) under --out. Nothing is written inside the
repository; the media folder is read only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
from skimage.feature import local_binary_pattern  # noqa: E402

from lipdub import av_model, media, phones  # noqa: E402
from lipdub import face_geometry as fg  # noqa: E402
from lipdub.audio_features import log_mel_frames, speech_mask_frames  # noqa: E402
from lipdub.infra.clip_run import ClipRun  # noqa: E402
from lipdub.infra.config import Config, load_config  # noqa: E402
from lipdub.models.base import GenerateRequest  # noqa: E402
from lipdub.models import registry, retrieval  # noqa: E402
from lipdub.sync import CONTEXT_FRAMES  # noqa: E402
from lipdub.infra.layout import STAGES  # noqa: E402
from lipdub.tasks import generate, run_stages  # noqa: E402
from lipdub.tasks.probe import ProbeRecord, video_stream  # noqa: E402
from lipdub.tasks.stabilize import StabilizeRecord, landmarks_in, lips_for_sync, mouth_opening  # noqa: E402

from common import DEFAULT_MEDIA, folders_problem  # noqa: E402
from common import dub as common_dub  # noqa: E402
from common import media_dir as media_dir_of  # noqa: E402
DEFAULT_OUT = Path("/tmp/lipdub-quality")
EXCLUDED_SPEECH = {"en-60s.wav"}  # a minute of speech: too long for a routine run
STRIP_SPEECH = "fr-7s.wav"  # the strip of each clip shows this dub when it is in the run

PREP_STAGES = STAGES[: STAGES.index("generate")]

RANDOM_DRAWS = 20
RIDGE_ALPHA = 30.0  # the regularisation lipdub.sync scores audio -> mouth with
N_FOLDS = 5
CLOSED_FRACTION = 0.10  # "closed": opening below 10 % of the speaker's 95th percentile

# name: (comparison, value, how it is printed in the targets)
TARGETS: dict[str, tuple[str, float, str]] = {
    "lmd_below_random": (">=", 0.30, ">= 30 %"),
    "opening_r": (">=", 0.60, ">= 0.6"),
    "offset_frames": ("abs<=", 1.0, "abs <= 1"),
    "predict_r": (">=", 0.70, ">= 0.7"),
    "closed_in_silence": (">=", 0.95, ">= 95 %"),
    "bilabials_closed": (">=", 0.80, ">= 80 %"),
    "motion_ratio": ("<=", 1.2, "<= 1.2x"),
    "sharpness_ratio": (">=", 0.9, ">= 0.9x"),
    "seam_ratio": ("<=", 1.1, "<= 1.1x"),
    "psnr_above_nose_db": (">=", 45.0, ">= 45 dB"),
    # 0 = as far from the source as a re-encode, 1 = as far as another person's face
    "identity_ratio": ("<=", 0.10, "<= 0.1"),
}


def meets(name: str, value: float | None) -> bool | None:
    """Whether a number meets its target (None when there is no number)."""
    if value is None or not np.isfinite(value):
        return None
    how, limit, _ = TARGETS[name]
    return {">=": value >= limit, "<=": value <= limit, "abs<=": abs(value) <= limit}[how]


# ---------------------------------------------------------------- running lipdub's stages


@dataclass
class Source:
    """What every measure needs about a source clip, read once from the prepared stages."""

    video: Path
    probe: ProbeRecord
    stream: media.VideoStreamInfo
    lm: dict[str, np.ndarray]  # landmarks.npz
    boxes: np.ndarray  # face_detect's boxes
    times_in_audio: np.ndarray  # each source frame's time on its soundtrack's clock
    opening_p95: float
    mel: np.ndarray  # log-mel of the source's own soundtrack at each source frame
    speech: np.ndarray  # source frames with speech in their own soundtrack

    @property
    def size(self) -> int:
        return int(self.lm["canonical_size"])

    @property
    def usable(self) -> np.ndarray:
        return lips_for_sync(self.lm)[1]


def load_source(clip: ClipRun) -> Source:
    """Read probe, face_detect and stabilize artifacts of a prepared ClipRun.

    Frame times on the audio's clock follow lipdub.tasks.generate, so the source's
    sound is read where generate reads it."""
    rec = clip.record("probe", ProbeRecord)
    stream = video_stream(clip.video, rec)
    lm = dict(np.load(clip.layout.artifact("stabilize", "landmarks.npz")))
    boxes = np.load(clip.layout.artifact("face_detect", "faces.npz"))["boxes"]
    times = stream.frame_times_s + stream.start_time_s - (rec.source_audio_start_s or 0.0)
    p95 = clip.record("stabilize", StabilizeRecord).mouth_opening_p95
    mel, speech = audio_at(clip.layout.artifact("audio_clean", "source_analysis.wav"), times)
    return Source(clip.video, rec, stream, lm, boxes, times, p95, mel, speech)


def audio_at(wav: Path, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel and speech mask of an analysis WAV at the given frame times (lipdub's own features)."""
    samples, rate = media.read_audio(wav, mono=True)
    mono = samples[:, 0]
    speech = speech_mask_frames(mono, rate, times) & (times < len(mono) / rate)
    return log_mel_frames(mono, rate, times), speech


def predictability(mel: np.ndarray, speech: np.ndarray, opening: np.ndarray, valid: np.ndarray, fps: float) -> float:
    """Held-out correlation of the inner-lip opening with its ridge prediction from the audio.

    The FaceSync test lipdub's drift stage relies on, reduced to the one shape a viewer
    reads first: if the mouth moves with the sound, the sound predicts it on frames the
    model never saw. Blocks of about a second keep neighbouring frames in one fold."""
    if valid.sum() < 2 * N_FOLDS:
        return float("nan")
    x = av_model.with_context(av_model.normalise(mel, speech), CONTEXT_FRAMES)
    y = np.nan_to_num(opening)[:, None]
    pred = av_model.cross_predict(x, y, valid, RIDGE_ALPHA, n_folds=N_FOLDS, block=max(10, int(round(fps))))
    return av_model.correlation(pred[valid, 0], y[valid, 0])


# ---------------------------------------------------------------- 1. reconstruction


def lip_distance(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """Per frame mean Euclidean distance between two sets of canonical lip landmarks,
    in units of the canonical eye-corner span, so clips of any resolution compare."""
    return np.linalg.norm(a - b, axis=2).mean(axis=1) / (fg.EYE_SPAN * size)


def moved_lips(moves: np.ndarray, lips: np.ndarray) -> np.ndarray:
    """Each frame's lips (n, 40, 2) taken by its 2x3 canonical move."""
    return np.einsum("nij,nkj->nki", moves[:, :, :2], lips) + moves[:, None, :, 2]


def reconstruction_request(src: Source, clip: ClipRun) -> tuple[GenerateRequest, np.ndarray, float]:
    """The request lipdub.tasks.generate would build, restricted to a first-half library.

    The clip's own soundtrack is the "dub" of its second half. The audio -> mouth model
    may only learn from the first half: second-half frames are marked as non-speech in
    the source mask so they neither train it nor set its normalisation. Its /p b m/ close
    the lips as a dub's do, found as `lipdub run` finds them without --language."""
    n = src.stream.n_frames
    first = np.arange(n) < n // 2
    target = np.flatnonzero(~first)
    # the source's sound as generate reads it, where the lips go with it: the "dub" is in
    # sync with the true mouths instead of carrying the clip's own offset
    sound = generate.source_sound(src.lm, clip.layout.artifact("audio_clean", "source_analysis.wav"), src.stream, src.probe)
    wav = clip.layout.artifact("audio_clean", "analysis.wav")
    dub_audio, dub_speech = audio_at(wav, sound.times_s)
    closures = generate.dub_closures(wav, clip.config.generate.dub_language, sound.times_s[target], src.probe.actual_fps, dub_speech[target]) if clip.config.generate.close_bilabials else None
    library = generate.canonical_library(src.video, src.stream, src.lm["to_canonical"], src.lm["usable"] & first, src.size)
    request = GenerateRequest(
        library=library, lips=src.lm["lips"], yaw_deg=src.lm["yaw"], usable=src.lm["usable"],
        source_audio=sound.mel, source_speech=sound.speech & first,
        dub_audio=dub_audio[target], dub_speech=dub_speech[target], target=target, library_frames=first, dub_closures=closures,
        pose_points=fg.canonical_points(src.lm["landmarks"], src.lm["to_canonical"], fg.POSE_POINTS),
    )
    return request, first, sound.offset_frames


def reconstruction(video: Path, cfg: Config, rng: np.random.Generator) -> tuple[dict[str, Any], Source]:
    """Measure 1: regenerate the second half from the first and compare with the truth."""
    clip = ClipRun.start(video, video, None, cfg)
    run_stages(clip, PREP_STAGES)
    src = load_source(clip)
    request, first, source_offset = reconstruction_request(src, clip)
    gen = registry.generator(cfg.generate)
    lips, size = src.lm["lips"], src.size
    opening = src.lm["opening"]
    truth = request.target[src.lm["usable"][request.target]]
    lmd = r = chosen = None
    # a learned generator draws on each true frame itself, its mouth in view as the
    # reference, and gives no lip landmarks: it is not measured here (its dubs are)
    if getattr(gen, "face_size", None) is None:
        result = gen.generate(request)
        ok = result.chosen >= 0
        truth, chosen = request.target[ok], result.chosen[ok]
        made = lips[chosen] if result.lips is None else result.lips[ok]  # as filmed, or as the generator reshaped them
        shown = made if result.moves is None else moved_lips(result.moves[ok], made)  # as moved to the target's pose
        lmd = float(lip_distance(shown, lips[truth], size).mean())
        r = av_model.correlation(mouth_opening(shown), opening[truth])
    pool = np.flatnonzero(src.lm["usable"] & first)
    # the best any picker could do with this library: how much room the selection leaves
    best_lmd = float(np.mean([lip_distance(lips[pool], lips[[k]], size).min() for k in truth]))
    # a picker told each true frame's opening and nothing else: the most any mapping from
    # sound to opening alone can reach, since the rest of the lip shape is left to chance
    # (each moved to the true frame's pose, as the generator moves its mouths)
    by_opening = pool[np.abs(opening[pool][None, :] - opening[truth][:, None]).argmin(axis=1)]
    pose = retrieval.lip_pose(lips, request.pose_points, pool)
    oracle_moves = retrieval.pose_moves(lips, by_opening, pose[truth] - pose[by_opening])
    opening_oracle_lmd = float(lip_distance(moved_lips(oracle_moves, lips[by_opening]), lips[truth], size).mean())
    rand_lmd, rand_r = [], []
    for _ in range(RANDOM_DRAWS):
        pick = rng.choice(pool, size=len(truth))
        rand_lmd.append(lip_distance(lips[pick], lips[truth], size).mean())
        rand_r.append(av_model.correlation(opening[pick], opening[truth]))

    # the source with its own soundtrack: the predictability cross-dub outputs are compared with
    source_r = predictability(src.mel, src.speech, src.lm["opening"], src.usable, src.probe.actual_fps)
    row = {
        "type": "reconstruction", "clip": video.stem, "mapping": result.mapping if chosen is not None else f"{gen.name}: not measured", "library_frames": int(len(pool)),
        "target_frames": int(len(truth)), "lmd": lmd, "random_lmd": float(np.mean(rand_lmd)), "best_lmd": best_lmd,
        "opening_oracle_lmd": opening_oracle_lmd, "opening_oracle_below_random": 1.0 - opening_oracle_lmd / float(np.mean(rand_lmd)),
        "lmd_below_random": None if lmd is None else 1.0 - lmd / float(np.mean(rand_lmd)), "opening_r": r, "random_opening_r": float(np.mean(rand_r)),
        "distinct_chosen": None if chosen is None else int(len(np.unique(chosen))), "source_predict_r": source_r, "sound_placed_frames": source_offset,
    }
    return row, src


# ---------------------------------------------------------------- 2. cross-dub


def language_of(speech: Path) -> str:
    """The media folder names its speech files <language>-...: en-male-5s.wav is English."""
    return speech.stem.split("-")[0]


def dub(video: Path, speech: Path, cfg: Config, out_dir: Path) -> ClipRun:
    """All nine stages in this process, as `lipdub run --language` would run them; the MP4 lands
    in out_dir for watching (measures read the remux stage's own file, which is the same bytes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return common_dub(video, speech, out_dir / f"{video.stem}__{speech.stem}.mp4", cfg.for_clip(language=language_of(speech)))


def output_opening(clip: ClipRun, src: Source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner-lip opening of the encoded output, by the landmarker lipdub itself uses.

    Boxes are the source's (the output shows source frame target[j] at frame j) and lips
    are mapped by the target frames' canonical maps, as the drift stage does, so the
    opening is in the same canonical pixels as the source's."""
    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    target = sel["target"]
    path = clip.layout.artifact("remux", "output.mp4")
    boxes = src.boxes[target].copy()
    boxes[~src.lm["usable"][target]] = np.nan
    raw = landmarks_in(path, media.probe(path).video, boxes, clip.config.stabilize.landmarker)
    found = ~np.isnan(raw[:, 0, 0])
    lips = np.full((len(raw), len(fg.LIPS), 2), np.nan, np.float32)
    for j in np.flatnonzero(found):
        lips[j] = fg.apply(src.lm["to_canonical"][target[j]], raw[j, fg.LIPS, :2])
    return mouth_opening(lips), found, target


def cross_dub_sync(clip: ClipRun, src: Source) -> dict[str, Any]:
    """Measure 2: offset (drift record), audio -> mouth predictability, closed mouth in silences."""
    rec = clip.records["drift"]
    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    fps, dub_speech = float(sel["fps"]), sel["dub_speech"]
    opening, found, target = output_opening(clip, src)
    out_times = np.arange(len(target)) / fps  # the output's frame grid, as generate builds it
    mel, _ = audio_at(clip.layout.artifact("audio_clean", "analysis.wav"), out_times)
    silent = ~dub_speech & found
    closed = opening[silent] < CLOSED_FRACTION * src.opening_p95
    bilabials = bilabial_closures(clip, opening, found, fps, src.opening_p95) if language_of(clip.audio) == "en" else []
    return {
        "frames": int(len(target)), "frames_with_lips": int(found.sum()),
        "offset_frames": rec.output.offset_frames, "sync_verdict": rec.output.verdict, "source_offset_frames": rec.source.offset_frames if rec.source else None,
        "predict_r": predictability(mel, dub_speech, opening, found, fps),
        "silent_frames": int(silent.sum()), "closed_in_silence": float(closed.mean()) if silent.any() else None,
        "bilabials": len(bilabials), "bilabials_closed": float(np.mean(bilabials)) if bilabials else None,
        "mapping": clip.records["generate"].mapping, "mean_run_length": clip.records["generate"].mean_run_length,
        "longest_hold_frames": clip.records["generate"].longest_hold_in_speech,
        "_opening": opening, "_found": found,
    }


def bilabial_closures(clip: ClipRun, opening: np.ndarray, found: np.ndarray, fps: float, opening_p95: float) -> list[bool]:
    """For each /p b m/ of an English dub (words recognised and force-aligned by pocketsphinx),
    whether the output's lips close on a frame inside it (or the nearest frame to a short one)."""
    times = np.arange(len(opening)) / fps
    out = []
    for p in phones.aligned_phones(clip.layout.artifact("audio_clean", "analysis.wav")):
        if p.name not in phones.BILABIALS:
            continue
        frames = np.flatnonzero(phones.closure_frames([p], times, 1 / fps) & found)
        if len(frames):
            out.append(bool(opening[frames].min() < CLOSED_FRACTION * opening_p95))
    return out


# ---------------------------------------------------------------- 3-4. pixels: stability, detail, preservation


def grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def lip_box(points: np.ndarray, shape: tuple[int, ...], pad_x: float, up: float, down: float) -> tuple[int, int, int, int]:
    """A box around the lip landmarks, padded by fractions of the mouth's width, inside the frame."""
    lips = points[fg.LIPS, :2]
    (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
    w = x1 - x0
    h, wd = shape[:2]
    return max(0, int(x0 - pad_x * w)), max(0, int(y0 - up * w)), min(wd, int(np.ceil(x1 + pad_x * w))), min(h, int(np.ceil(y1 + down * w)))


def lower_face_box(points: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Mouth, chin and cheeks beside the mouth: where a viewer sees jitter or flicker."""
    return lip_box(points, shape, 0.5, 0.35, 0.9)


def mouth_box(points: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The lips with a small margin: where teeth and lip texture show blur."""
    return lip_box(points, shape, 0.15, 0.15, 0.15)


def crop(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return img[y0:y1, x0:x1]


def seam_ring(mask: np.ndarray, to_canonical: np.ndarray, size: int, shape: tuple[int, ...], feather_px: float) -> np.ndarray:
    """Pixels just outside the blend mask, in frame coordinates.

    The mask is warped to the frame exactly as lipdub.tasks.blend.paste warps it; its
    0.5 contour is dilated by two feathers (scaled to frame pixels), so the ring holds
    the feathered edge and the end of the blend's support, where a seam would show."""
    x0, y0, _, _ = fg.mouth_box(size)
    patch_to_frame = fg.invert(to_canonical) @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float32)
    alpha = cv2.warpAffine(mask.astype(np.float32) / 255, patch_to_frame, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderValue=0)
    inner = (alpha >= 0.5).astype(np.uint8)
    scale = 1.0 / np.sqrt(abs(np.linalg.det(to_canonical[:, :2])))  # frame px per canonical px
    r = max(2, int(round(2 * feather_px * scale)))
    ring = cv2.dilate(inner, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return (ring > 0) & (inner == 0)


def gradient_energy(g: np.ndarray, where: np.ndarray) -> float:
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return float((gx[where] ** 2 + gy[where] ** 2).mean())


class AboveNose:
    """Pooled squared error over the rows above the nose tip (PSNR over all frames)."""

    def __init__(self) -> None:
        self.sq, self.n = 0.0, 0

    def add(self, a: np.ndarray, b: np.ndarray, points: np.ndarray) -> None:
        rows = int(points[fg.NOSE_TIP, 1])
        if rows > 0:
            d = a[:rows].astype(np.float64) - b[:rows].astype(np.float64)
            self.sq += float((d**2).sum())
            self.n += d.size

    @property
    def db(self) -> float:
        return media.psnr_db(self.sq, self.n)


def speech_matched_ratio(motion: dict[str, list[float]], speaking: dict[str, list[bool]]) -> float | None:
    """Output motion against the source's as if the source spoke where the dub speaks.

    A mouth moves more while talking: a source silent for a third of its frames, dubbed
    with speech throughout, moves more in the output although every step looks like the
    source talking. The reference weights the source's speaking and silent steps by how
    often the dub speaks and is silent."""
    src, src_speaks = np.asarray(motion["src"]), np.asarray(speaking["src"], bool)
    if len(src) == 0:
        return None
    talk = src[src_speaks].mean() if src_speaks.any() else src.mean()
    quiet = src[~src_speaks].mean() if (~src_speaks).any() else src.mean()
    share = float(np.mean(speaking["dub"]))
    reference = share * talk + (1 - share) * quiet
    return float(np.mean(motion["out"]) / reference) if reference > 0 else None


def pixel_measures(clip: ClipRun, src: Source, strip_frames: list[int]) -> tuple[dict[str, Any], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Measures 3 and 4 in one pass over the output and the source frames it shows.

    Everything is a ratio to the source over the same frames (same boxes, same order,
    bounce included), so head motion, lighting and the clip's own sharpness cancel."""
    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    target, chosen = sel["target"], sel["chosen"]
    masks = np.load(clip.layout.artifact("generate", "masks.npy"), mmap_mode="r")
    path = clip.layout.artifact("remux", "output.mp4")
    points = src.lm["landmarks"]
    ok = ~np.isnan(points[:, 0, 0])
    feather = clip.config.generate.mask_feather_px
    motion = {"out": [], "src": []}
    speaking = {"dub": [], "src": []}  # per step of motion: does the dub speak there, does the source
    sharp = {"out": [], "src": []}
    seam = {"out": [], "src": []}
    above = AboveNose()
    identity: list[float] = []
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    prev: tuple[np.ndarray, np.ndarray] | None = None
    frames = zip((rgb for _, rgb in media.read_frames(path, media.probe(path).video)), media.read_frame_sequence(src.video, src.stream, target.tolist()))
    for j, (out_rgb, src_rgb) in enumerate(frames):
        h, w = min(out_rgb.shape[0], src_rgb.shape[0]), min(out_rgb.shape[1], src_rgb.shape[1])
        out_rgb, src_rgb = out_rgb[:h, :w], src_rgb[:h, :w]
        t = target[j]
        if j in strip_frames:
            kept[j] = (src_rgb, out_rgb)
        g_out, g_src = grey(out_rgb), grey(src_rgb)
        if ok[t]:
            above.add(out_rgb, src_rgb, points[t])
            if prev is not None:  # this frame's box on both frames of the step
                box = lower_face_box(points[t], (h, w))
                motion["out"].append(np.abs(crop(g_out, box) - crop(prev[0], box)).mean())
                motion["src"].append(np.abs(crop(g_src, box) - crop(prev[1], box)).mean())
                speaking["dub"].append(bool(sel["dub_speech"][j]))
                speaking["src"].append(bool(src.speech[t]))
            if j % IDENTITY_EVERY == 0 and src.usable[t]:
                m = src.lm["to_canonical"][t]
                identity.append(chi2(face_descriptor(out_rgb, m, src.size), face_descriptor(src_rgb, m, src.size)))
            mb = mouth_box(points[t], (h, w))
            sharp["out"].append(cv2.Laplacian(crop(g_out, mb), cv2.CV_32F).var())
            sharp["src"].append(cv2.Laplacian(crop(g_src, mb), cv2.CV_32F).var())
            if chosen[j] >= 0:
                ring = seam_ring(np.asarray(masks[j]), src.lm["to_canonical"][t], src.size, (h, w), feather)
                if ring.any():
                    seam["out"].append(gradient_energy(g_out, ring))
                    seam["src"].append(gradient_energy(g_src, ring))
        prev = (g_out, g_src)

    def ratio(d: dict[str, list[float]]) -> float | None:
        return float(np.mean(d["out"]) / np.mean(d["src"])) if d["src"] and np.mean(d["src"]) > 0 else None

    return {
        "motion_ratio": ratio(motion), "motion_out": float(np.mean(motion["out"])) if motion["out"] else None,
        "motion_ratio_speech_matched": speech_matched_ratio(motion, speaking),
        "sharpness_ratio": ratio(sharp), "seam_ratio": ratio(seam), "psnr_above_nose_db": above.db,
        "identity_distance": float(np.mean(identity)) if identity else None,
    }, kept


IDENTITY_EVERY = 3  # face descriptors on every third frame: neighbours add little
LBP_CELLS, LBP_CODES = 8 * 6, 10  # a 128 x 96 face in 16 px cells; uniform LBP with 8 neighbours has 10 codes


def face_descriptor(rgb: np.ndarray, to_canonical: np.ndarray, size: int) -> np.ndarray:
    """Local binary pattern histograms over a grid of the aligned face (Ahonen, Hadid and
    Pietikainen, "Face description with local binary patterns", 2006): a face-recognition
    descriptor that needs no learned weights. Each cell's histogram sums to one."""
    x0, x1, y0, y1 = int(0.2 * size), int(0.8 * size), int(0.16 * size), int(0.96 * size)
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float32)
    face = cv2.warpAffine(grey(rgb), (shift @ np.vstack([to_canonical, [0, 0, 1]]))[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_AREA)
    face = np.clip(cv2.resize(face, (96, 128), interpolation=cv2.INTER_AREA), 0, 255).astype(np.uint8)
    codes = local_binary_pattern(face, 8, 1, method="uniform").astype(int)
    cells = codes.reshape(8, 16, 6, 16).transpose(0, 2, 1, 3).reshape(LBP_CELLS, -1)
    hist = np.stack([np.bincount(c, minlength=LBP_CODES) for c in cells]).astype(np.float64)
    return (hist / hist.sum(axis=1, keepdims=True)).ravel()


def chi2(a: np.ndarray, b: np.ndarray) -> float:
    """Chi-square distance between descriptors, averaged per grid cell."""
    return float(((a - b) ** 2 / (a + b + 1e-10)).sum() / LBP_CELLS)


def identity_ratio(output: float | None, reencode: float | None, lookalike: float | None) -> float | None:
    """Where the output's face sits between a re-encode of the source (0) and another person (1)."""
    if output is None or reencode is None or lookalike is None or lookalike <= reencode:
        return None
    return (output - reencode) / (lookalike - reencode)


def reencode_reference(src: Source, cfg: Config, scratch: Path) -> dict[str, Any]:
    """A plain CRF 18 re-encode of the source (from its own 4:2:0 planes, as a transcode):
    what any re-encode costs, so the output's numbers can be read against it (PSNR above
    the nose, face-descriptor distance); and the source's own face descriptors, which other
    clips' faces are compared with (look-alikes)."""
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"{src.video.stem}-crf18.mp4"
    s = src.stream
    with media.SegmentWriter(path, s.width, s.height, media.fps_fraction(s.actual_fps), 18, cfg.blend.preset) as writer:
        for _, frame in media.read_frames(src.video, s, planes=True):  # the source's own planes, as a plain transcode
            writer.write(frame.rgb, frame)
    above = AboveNose()
    points = src.lm["landmarks"]
    again = (rgb for _, rgb in media.read_frames(path, media.probe(path).video))
    dist, own = [], []
    for (i, rgb), enc in zip(media.read_frames(src.video, s), again):
        if not np.isnan(points[i, 0, 0]):
            h, w = enc.shape[:2]
            above.add(enc, rgb[:h, :w], points[i])
            if i % IDENTITY_EVERY == 0 and src.usable[i]:
                d_src = face_descriptor(rgb[:h, :w], src.lm["to_canonical"][i], src.size)
                dist.append(chi2(face_descriptor(enc, src.lm["to_canonical"][i], src.size), d_src))
                own.append(d_src)
    path.unlink()
    return {"psnr": above.db, "identity_distance": float(np.mean(dist)) if dist else None, "descriptors": np.array(own)}


# ---------------------------------------------------------------- 5. strips


def strip_frames(clip: ClipRun) -> list[int]:
    """Four output frames spread over the dub's speech (over the whole output if it has little)."""
    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    speech = np.flatnonzero(sel["dub_speech"])
    pool = speech if len(speech) >= 8 else np.arange(len(sel["target"]))
    return [int(pool[int(q * (len(pool) - 1))]) for q in (0.125, 0.375, 0.625, 0.875)]


def save_strip(path: Path, clip: ClipRun, src: Source, kept: dict[int, tuple[np.ndarray, np.ndarray]], opening: np.ndarray, cell: int = 256) -> None:
    """One row per frame: source frame, output frame, source mouth, output mouth.

    The close-ups use the same box on both (from the source frame's lips), so any
    difference in shape, blur or colour is the generator's and the blend's."""
    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    target, chosen, speech = sel["target"], sel["chosen"], sel["dub_speech"]
    rows = []
    for j, (src_rgb, out_rgb) in sorted(kept.items()):
        t = target[j]
        pts = src.lm["landmarks"][t]
        cells = [cv2.resize(src_rgb, (cell, cell), interpolation=cv2.INTER_AREA), cv2.resize(out_rgb, (cell, cell), interpolation=cv2.INTER_AREA)]
        if not np.isnan(pts[0, 0]):
            x0, y0, x1, y1 = lip_box(pts, src_rgb.shape, 0.35, 0.3, 0.5)
            side = max(x1 - x0, y1 - y0)
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            box = (max(0, cx - side // 2), max(0, cy - side // 2), cx + side // 2, cy + side // 2)
            cells += [cv2.resize(crop(img, box), (cell, cell), interpolation=cv2.INTER_CUBIC) for img in (src_rgb, out_rgb)]
        else:
            cells += [np.zeros((cell, cell, 3), np.uint8)] * 2
        row = np.concatenate(cells, axis=1)
        label = f"out {j} <- src {t}, mouth from {chosen[j]}, dub {'speech' if speech[j] else 'silent'}, opening {opening[j]:.1f}"
        bar = np.full((22, row.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        rows += [bar, row]
    head = np.full((26, 4 * cell, 3), 230, np.uint8)
    for k, name in enumerate(("source", "output", "source mouth", "output mouth")):
        cv2.putText(head, name, (k * cell + 8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    image = np.concatenate([head] + rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


# ---------------------------------------------------------------- report


def fmt(value: Any, spec: str = ".2f", name: str | None = None, unit: str = "", scale: float = 1.0) -> str:
    """A number (times scale, with its unit), and "ok" or "NO" after it when it has a target."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    text = format(value * scale, spec) + unit
    if name:
        text += " ok" if meets(name, value) else " NO"
    return text


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def t(name: str) -> str:
    return f"(target {TARGETS[name][2]})"


def share(rows: list[dict], name: str, target: str | None = None) -> str:
    """How many rows meet a target (name's own, or another measure's), e.g. 3/5."""
    judged = [meets(target or name, r.get(name)) for r in rows]
    judged = [j for j in judged if j is not None]
    return f"{sum(judged)}/{len(judged)}"


def median(rows: list[dict], name: str) -> float | None:
    vals = [r[name] for r in rows if r.get(name) is not None and np.isfinite(r[name])]
    return float(np.median(vals)) if vals else None


def pooled_bilabials(pairs: list[dict]) -> float | None:
    n = sum(p.get("bilabials", 0) for p in pairs)
    return sum(p["bilabials_closed"] * p["bilabials"] for p in pairs if p.get("bilabials")) / n if n else None


def report(recon: list[dict], pairs: list[dict], reencode: dict[str, float]) -> tuple[str, dict[str, Any]]:
    out = []
    out.append("## 1. Reconstruction: second half from the first half's mouths, driven by the clip's own audio (placed where its lips go with it)\n")
    out.append(md_table(
        ["clip", "mapping", "frames", "sound placed (frames)", "LMD (eye spans)", "random LMD", "best in library", "best by true opening (below random)", f"LMD below random {t('lmd_below_random')}", f"opening r {t('opening_r')}", "random r", "distinct mouths"],
        [[r["clip"], r["mapping"], str(r["target_frames"]), f"{r['sound_placed_frames']:+.2f}", fmt(r["lmd"], ".3f"), fmt(r["random_lmd"], ".3f"), fmt(r["best_lmd"], ".3f"), f"{r['opening_oracle_lmd']:.3f} ({r['opening_oracle_below_random']:.0%})", fmt(r["lmd_below_random"], ".0f", "lmd_below_random", " %", 100),
          fmt(r["opening_r"], ".3f", "opening_r"), fmt(r["random_opening_r"], ".3f"), fmt(r["distinct_chosen"], ".0f")] for r in recon],
    ))
    ok = [p for p in pairs if not p.get("error")]
    out.append("\n## 2. Cross-dub: sync, audio -> mouth predictability, closed mouth in the dub's silences\n")
    out.append(md_table(
        ["clip", "speech", "frames", f"offset frames {t('offset_frames')}", "source offset", f"predict r {t('predict_r')}", "source r (own audio)", f"closed in silence {t('closed_in_silence')}", "silent frames",
         f"/p b m/ closed {t('bilabials_closed')}", "/p b m/"],
        [[p["clip"], p["speech"], str(p["frames"]), fmt(p["offset_frames"], "+.2f", "offset_frames"), fmt(p["source_offset_frames"], "+.2f"), fmt(p["predict_r"], ".3f", "predict_r"),
          fmt(p["source_predict_r"], ".3f"), fmt(p["closed_in_silence"], ".0f", "closed_in_silence", " %", 100), str(p["silent_frames"]),
          fmt(p.get("bilabials_closed"), ".0f", "bilabials_closed", " %", 100), str(p.get("bilabials", 0))] for p in ok],
    ))
    out.append("\n## 3. Stability and detail of the lower face, output / source over the same frames\n")
    out.append(md_table(
        ["clip", "speech", f"frame-to-frame change {t('motion_ratio')}", "vs the source speaking where the dub speaks", "longest frozen mouth in speech, /p b m/ aside (frames)", f"mouth sharpness {t('sharpness_ratio')}", f"seam gradient {t('seam_ratio')}"],
        [[p["clip"], p["speech"], fmt(p["motion_ratio"], ".2f", "motion_ratio", "x"), fmt(p.get("motion_ratio_speech_matched"), ".2f", None, "x"), str(p.get("longest_hold_frames", "-")), fmt(p["sharpness_ratio"], ".2f", "sharpness_ratio", "x"), fmt(p["seam_ratio"], ".2f", "seam_ratio", "x")] for p in ok],
    ))
    out.append("\n## 4. Preservation above the nose (PSNR vs the decoded source frames shown)\n")
    out.append(md_table(
        ["clip", "speech", f"output dB {t('psnr_above_nose_db')}", "plain CRF 18 re-encode dB"],
        [[p["clip"], p["speech"], fmt(p["psnr_above_nose_db"], ".1f", "psnr_above_nose_db"), fmt(reencode.get(p["clip"]), ".1f")] for p in ok],
    ))
    failed = [p for p in pairs if p.get("error")]
    if failed:
        out.append("\nfailed pairs:\n" + "\n".join(f"- {p['clip']} x {p['speech']}: {p['error']}" for p in failed))
    out.append("\n## 5. Identity (LBP face descriptor, chi-square distance to the source frame shown)\n")
    out.append(md_table(
        ["clip", "speech", "output", "plain CRF 18 re-encode", "another person", f"ratio {t('identity_ratio')}"],
        [[p["clip"], p["speech"], fmt(p.get("identity_distance"), ".4f"), fmt(ref.get("reencode_identity_distance"), ".4f"), fmt(ref.get("lookalike_identity_distance"), ".4f"),
          fmt(p.get("identity_ratio"), ".3f", "identity_ratio")] for p in ok for ref in [next(r for r in recon if r["clip"] == p["clip"])]],
    ))

    silent = sum(p["silent_frames"] for p in ok)
    closed = sum(p["closed_in_silence"] * p["silent_frames"] for p in ok if p["closed_in_silence"] is not None)
    summary = {
        "type": "summary", "clips": len(recon), "pairs": len(pairs), "failures": len(failed),
        "lmd_below_random_median": median(recon, "lmd_below_random"), "lmd_below_random_met": share(recon, "lmd_below_random"),
        "opening_r_median": median(recon, "opening_r"), "opening_r_met": share(recon, "opening_r"),
        "offset_met": share(ok, "offset_frames"), "predict_r_median": median(ok, "predict_r"), "predict_r_met": share(ok, "predict_r"),
        "source_predict_r_median": median(recon, "source_predict_r"),
        "closed_in_silence_pooled": closed / silent if silent else None, "closed_in_silence_met": share(ok, "closed_in_silence"),
        "motion_ratio_median": median(ok, "motion_ratio"), "motion_met": share(ok, "motion_ratio"),
        "motion_speech_matched_median": median(ok, "motion_ratio_speech_matched"),
        "motion_speech_matched_within": share(ok, "motion_ratio_speech_matched", target="motion_ratio"),
        "longest_hold_max": max((p["longest_hold_frames"] for p in ok if p.get("longest_hold_frames") is not None), default=None),
        "sharpness_ratio_median": median(ok, "sharpness_ratio"), "sharpness_met": share(ok, "sharpness_ratio"),
        "seam_ratio_median": median(ok, "seam_ratio"), "seam_met": share(ok, "seam_ratio"),
        "psnr_min_db": min((p["psnr_above_nose_db"] for p in ok), default=None), "psnr_met": share(ok, "psnr_above_nose_db"),
        "reencode_psnr_min_db": min(reencode.values(), default=None),
        "bilabials_closed_pooled": pooled_bilabials(ok), "bilabials_met": share([p for p in ok if p.get("bilabials")], "bilabials_closed"),
        "identity_ratio_median": median(ok, "identity_ratio"), "identity_met": share(ok, "identity_ratio"),
    }
    s = summary

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.0f} %"

    overall = (
        f"overall: reconstruction LMD below random median {pct(s['lmd_below_random_median'])} ({s['lmd_below_random_met']} clips meet >= 30 %), "
        f"opening r median {fmt(s['opening_r_median'])} ({s['opening_r_met']} meet >= 0.6); "
        f"cross-dub offset within 1 frame {s['offset_met']}, predict r median {fmt(s['predict_r_median'])} ({s['predict_r_met']} meet >= 0.7; sources {fmt(s['source_predict_r_median'])}), "
        f"closed in silence {pct(s['closed_in_silence_pooled'])} pooled ({s['closed_in_silence_met']} meet >= 95 %); "
        f"English /p b m/ closed {pct(s['bilabials_closed_pooled'])} pooled ({s['bilabials_met']} meet >= 80 %); "
        f"identity ratio median {fmt(s['identity_ratio_median'], '.3f')} ({s['identity_met']} meet <= 0.1); "
        f"frame-to-frame change median {fmt(s['motion_ratio_median'])}x ({s['motion_met']} meet <= 1.2x; against the source speaking where the dub speaks "
        f"{fmt(s['motion_speech_matched_median'])}x, {s['motion_speech_matched_within']} within 1.2x; longest frozen mouth in speech, /p b m/ aside, {s['longest_hold_max']} frames), sharpness {fmt(s['sharpness_ratio_median'])}x ({s['sharpness_met']} meet >= 0.9x), "
        f"seam {fmt(s['seam_ratio_median'])}x ({s['seam_met']} meet <= 1.1x); "
        f"PSNR above nose min {fmt(s['psnr_min_db'], '.1f')} dB ({s['psnr_met']} meet >= 45 dB; CRF 18 re-encode min {fmt(s['reencode_psnr_min_db'], '.1f')} dB); failures {len(failed)}/{len(pairs)}"
    )
    return "\n".join(out) + "\n\n" + overall, summary


def machine() -> dict[str, Any]:
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = None
    return {"type": "machine", "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(), "loadavg": load, "python": platform.python_version()}


def pick(folder: Path, names: str, skip: set[str]) -> list[Path]:
    """Files of a media folder, restricted to the comma-separated names (stem or file name)."""
    keep = {n.strip().removesuffix(".mp4").removesuffix(".wav") for n in names.split(",") if n.strip()}
    return [p for p in sorted(folder.iterdir()) if p.name not in skip and p.suffix in (".mp4", ".wav") and (not keep or p.stem in keep)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=None, help=f"folder with clips/ and speech/ (default: $LIPDUB_MEDIA, else {DEFAULT_MEDIA})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"scratch folder for work dirs, outputs, strips and results.jsonl (default: {DEFAULT_OUT})")
    ap.add_argument("--clips", default="", help="comma-separated clip names to keep")
    ap.add_argument("--speech", default="", help="comma-separated speech files to dub with (default: all but en-60s)")
    ap.add_argument("--preset", default=None, help="lipdub preset (default: default)")
    ap.add_argument("--config", type=Path, default=None, help="lipdub config file, e.g. a learned generator and its weights (its dubs are measured; a learned generator's reconstruction is not)")
    ap.add_argument("--reuse-work", action="store_true", help="keep the stage cache of an earlier run (default: start from an empty work dir)")
    args = ap.parse_args(argv)

    media_dir = media_dir_of(args.media)
    if (status := folders_problem("quality", media_dir, args.out)) is not None:
        return status
    out = args.out.resolve()
    work = out / "work"
    if work.exists() and not args.reuse_work:
        shutil.rmtree(work)  # stage versions are bumped by hand: a stale cache could hide a code change
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(args.config, preset=args.preset, work_dir=work)
    clips = pick(media_dir / "clips", args.clips, set())
    speech = pick(media_dir / "speech", args.speech, EXCLUDED_SPEECH if not args.speech else set())
    strip_speech = next((s for s in speech if s.name == STRIP_SPEECH), speech[0] if speech else None)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    info = machine()
    print(f"# lipdub quality benchmark, {info['date']}, {info['cpus']} CPUs, load {info['loadavg']}, preset {cfg.preset}\n")
    print(f"clips: {', '.join(c.stem for c in clips)}; speech: {', '.join(s.stem for s in speech)}\n")

    results: list[dict] = [info]
    recon, pairs, reencode = [], [], {}
    descriptors: dict[str, np.ndarray] = {}
    for video in clips:
        row, src = reconstruction(video, cfg, rng)
        recon.append(row)
        reference = reencode_reference(src, cfg, out / "scratch")
        reencode[video.stem] = reference["psnr"]
        descriptors[video.stem] = reference["descriptors"]
        row["reencode_psnr_above_nose_db"] = reference["psnr"]
        row["reencode_identity_distance"] = reference["identity_distance"]
        print(f"[{time.perf_counter() - started:5.0f} s] reconstruction {video.stem}: LMD {fmt(row['lmd'], '.3f')} vs random {row['random_lmd']:.3f}, r {fmt(row['opening_r'])}", file=sys.stderr, flush=True)
        for sp in speech:
            pair: dict[str, Any] = {"type": "pair", "clip": video.stem, "speech": sp.stem, "source_predict_r": row["source_predict_r"]}
            try:
                clip = dub(video, sp, cfg, out / "dubs")
                pair.update(cross_dub_sync(clip, src))
                wanted = strip_frames(clip) if sp == strip_speech else []
                pixels, kept = pixel_measures(clip, src, wanted)
                pair.update(pixels)
                if kept:
                    strip = out / "strips" / f"{video.stem}__{sp.stem}.png"
                    save_strip(strip, clip, src, kept, pair["_opening"])
                    pair["strip"] = str(strip)
            except Exception as exc:  # noqa: BLE001 - one failing pair must not end the run
                pair["error"] = f"{exc.__class__.__name__}: {exc}"
                traceback.print_exc()
            pair.pop("_opening", None)
            pair.pop("_found", None)
            pairs.append(pair)
            said = pair.get("error") or f"offset {fmt(pair.get('offset_frames'))}, r {fmt(pair.get('predict_r'))}"
            print(f"[{time.perf_counter() - started:5.0f} s] {video.stem} x {sp.stem}: {said}", file=sys.stderr, flush=True)

    for row in recon:  # a look-alike: every other clip's face against this clip's
        others = [d for name, d in descriptors.items() if name != row["clip"] and len(d)]
        mine = descriptors.get(row["clip"], np.zeros((0,)))
        row["lookalike_identity_distance"] = float(np.mean([chi2(a, b) for o in others for a in mine for b in o])) if others and len(mine) else None
    for pair in pairs:
        ref = next(r for r in recon if r["clip"] == pair["clip"])
        pair["identity_ratio"] = identity_ratio(pair.get("identity_distance"), ref["reencode_identity_distance"], ref["lookalike_identity_distance"])
    text, summary = report(recon, pairs, reencode)
    print(text)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\n({summary['seconds']:.0f} s; strips in {out / 'strips'}; rows in {out / 'results.jsonl'})")
    with open(out / "results.jsonl", "w") as fh:
        for r in results + recon + pairs + [summary]:
            fh.write(json.dumps(r, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
