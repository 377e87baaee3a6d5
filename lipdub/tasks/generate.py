"""generate: a new lower face for every output frame, driven by the dub's audio.

Builds the request every generator backend takes (the source's canonical lower faces,
lip shapes, pose, both soundtracks as log-mel on their frame grids) and writes the
generated mouths, the library, the blend masks and the selection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from pydantic import BaseModel

from lipdub import face_geometry as fg
from lipdub import media, mouth_warp, phones
from lipdub.audio_features import log_mel_frames, speech_mask_frames
from lipdub.infra.config import GenerateConfig, SyncMode
from lipdub.models.base import GenerateRequest, GenerateResult, LazyFrames
from lipdub.models import registry
from lipdub.sync import measure_sync
from lipdub.tasks.probe import ProbeRecord
from lipdub.tasks.stabilize import lips_for_sync
from lipdub.timeline import build_timeline
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task
from lipdub.tasks.probe import video_stream


class GenerateRecord(BaseModel):
    backend: str
    mapping: str
    n_output_frames: int
    output_fps: float
    sync_mode: str
    audio_duration_s: float
    frames_generated: int
    distinct_source_frames: int
    mean_run_length: float
    longest_hold_in_speech: int  # most output frames in a row showing one source mouth while the dub speaks (its /p b m/ aside, held shut): a frozen mouth
    dub_speech_ratio: float
    bilabial_frames: int  # output frames whose lips were asked to close for a /p b m/
    source_offset_frames: float  # the source's own sound against its lips, which its mapping learned without


class Crop(NamedTuple):
    """A box of each frame's canonical face, as an image: where the frame's pixels go
    (`place`, after the frame's own canonical transform), its size, how it is resampled,
    and the .npy file it is written to (None: kept in memory)."""

    place: np.ndarray  # 2x3: canonical px -> this image's px
    dims: tuple[int, int]  # width, height
    flags: int
    out: Path | None


def mouth_crop(size: int, out: Path | None = None) -> Crop:
    """The canonical mouth box at full resolution: the library every generator chooses or draws in."""
    x0, y0, x1, y1 = fg.mouth_box(size)
    return Crop(np.array([[1, 0, -x0], [0, 1, -y0]], np.float32), (x1 - x0, y1 - y0), cv2.INTER_CUBIC, out)


def face_crop(box: tuple[float, float, float, float], side: int, size: int, out: Path | None = None) -> Crop:
    """The square `box` of the canonical face (shares of its side `size`) at `side` px: what a learned generator draws on."""
    scale = side / ((box[2] - box[0]) * size)
    return Crop(np.array([[scale, 0, -box[0] * size * scale], [0, scale, -box[1] * size * scale]], np.float32), (side, side), cv2.INTER_AREA, out)


def canonical_crops(video: Path, stream: media.VideoStreamInfo, to_canonical: np.ndarray, usable: np.ndarray, crops: list[Crop]) -> list[np.ndarray]:
    """Every usable source frame warped into each crop, from one decode of the video
    (each written to its .npy file as it is made, and returned mapped from it)."""
    made = [np.zeros((stream.n_frames, c.dims[1], c.dims[0], 3), np.uint8) if c.out is None else np.lib.format.open_memmap(c.out, mode="w+", dtype=np.uint8, shape=(stream.n_frames, c.dims[1], c.dims[0], 3)) for c in crops]
    for i, rgb in media.read_frames(video, stream):
        if usable[i]:
            to_face = np.vstack([to_canonical[i], [0, 0, 1]])
            for c, frames in zip(crops, made):
                frames[i] = cv2.warpAffine(rgb, c.place @ to_face, c.dims, flags=c.flags, borderMode=cv2.BORDER_REPLICATE)
    for c, frames in zip(crops, made):
        if c.out is not None:
            frames.flush()
    return made


def canonical_library(video: Path, stream: media.VideoStreamInfo, to_canonical: np.ndarray, usable: np.ndarray, size: int, out: Path | None = None) -> np.ndarray:
    """Every source frame's lower face warped into the canonical mouth box (written to the
    .npy file `out` as it is made, and returned mapped from it, when given)."""
    return canonical_crops(video, stream, to_canonical, usable, [mouth_crop(size, out)])[0]


def write_frames(path: Path, frames: np.ndarray | LazyFrames, block: int = 64) -> None:
    """frames (n, h, w, c) to a .npy file a block at a time: memory stays flat however long the dub."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=tuple(frames.shape))
    for a in range(0, len(frames), block):
        out[a : a + block] = frames[a : a + block]
    out.flush()


def _runs(chosen: np.ndarray) -> float:
    gen = chosen[chosen >= 0]
    if len(gen) < 2:
        return float(len(gen))
    breaks = np.count_nonzero(np.diff(gen) != 1)
    return len(gen) / (breaks + 1)


def _longest_hold(chosen: np.ndarray, speech: np.ndarray) -> int:
    """The most consecutive speaking output frames that show one and the same source mouth."""
    longest = run = 0
    for j in range(len(chosen)):
        same = j > 0 and chosen[j] >= 0 and chosen[j] == chosen[j - 1] and speech[j] and speech[j - 1]
        run = run + 1 if same else (1 if chosen[j] >= 0 and speech[j] else 0)
        longest = max(longest, run)
    return longest


def source_offset_frames(lm: np.lib.npyio.NpzFile, audio: np.ndarray, rate: int, frame_times_s: np.ndarray, fps: float) -> float:
    """How late the source's own sound runs against its lips (frames; 0 when the reading is
    not clear).

    The speaker mapping learns from the source's sound as it is muxed, and reproduces the
    lag it learns: glasses-woman's sound reads 0.6 frames early, and her six dubs read 0.5
    frames early on average, where the generic mapping's dubs read 0 (benchmarks/quality.py)."""
    lips, valid = lips_for_sync(lm)
    result = measure_sync(lips, valid, audio, rate, frame_times_s, fps, find_drift=False)
    clear = result.sync_class in ("in_sync", "constant_offset") and not result.reason  # a weak reading's reason says so
    return float(result.offset_frames) if clear else 0.0


@dataclass(frozen=True)
class SourceSound:
    """The source's own soundtrack on its frame grid, read where its lips go with it."""

    offset_frames: float  # how late the sound ran against the lips; times_s are corrected by it
    times_s: np.ndarray  # each source frame's time on the soundtrack's clock
    mel: np.ndarray  # log-mel at those times
    speech: np.ndarray  # speech at those times


def source_sound(lm: np.lib.npyio.NpzFile, source_wav: Path, stream: media.VideoStreamInfo, probe: ProbeRecord) -> SourceSound | None:
    """What the speaker mapping learns from (None: under half a second of source sound)."""
    samples, rate = media.read_audio(source_wav, mono=True)
    if len(samples) <= rate // 2:
        return None
    mono = samples[:, 0]
    times = stream.frame_times_s + stream.start_time_s - (probe.source_audio_start_s or 0.0)
    offset = source_offset_frames(lm, mono, rate, times, probe.actual_fps)
    times = times + offset / probe.actual_fps  # the sound each frame's lips go with
    return SourceSound(offset, times, log_mel_frames(mono, rate, times), speech_mask_frames(mono, rate, times))


def dub_closures(analysis_wav: Path, language: str | None, times_s: np.ndarray, fps: float, speech: np.ndarray) -> np.ndarray:
    """Frames (at times_s on the dub's clock) whose lips must meet for a /p b m/ the dub speaks."""
    return phones.closure_frames(phones.of_speech(analysis_wav, language), times_s, 1 / fps) & speech


def generate(video: Path, probe: ProbeRecord, stream: media.VideoStreamInfo, landmarks_npz: Path, analysis_wav: Path, source_wav: Path, out_dir: Path, cfg: GenerateConfig, sync_mode: SyncMode) -> GenerateRecord:
    lm = np.load(landmarks_npz)
    size = int(lm["canonical_size"])
    usable = lm["usable"]
    timeline = build_timeline(probe.n_frames, probe.actual_fps, probe.dub_duration_s, sync_mode)
    out_times = np.arange(timeline.n_frames) / timeline.fps

    dub, rate = media.read_audio(analysis_wav, mono=True)
    dub = dub[:, 0]
    dub_audio = log_mel_frames(dub, rate, out_times)
    dub_speech = speech_mask_frames(dub, rate, out_times) & (out_times < len(dub) / rate)
    sound = source_sound(lm, source_wav, stream, probe)

    generator = registry.generator(cfg)
    crops = [mouth_crop(size, out_dir / "library.npy")]
    if face_size := getattr(generator, "face_size", None):  # a learned generator draws on whole faces, cut in the same pass
        crops.append(face_crop(generator.face_box, face_size, size, out_dir / "faces.npy"))
    library, *faces = canonical_crops(video, stream, lm["to_canonical"], usable, crops)
    closures = dub_closures(analysis_wav, cfg.dub_language, out_times, timeline.fps, dub_speech) if cfg.close_bilabials else None
    request = GenerateRequest(
        library=library, lips=lm["lips"], yaw_deg=lm["yaw"], usable=usable,
        source_audio=None if sound is None else sound.mel, source_speech=None if sound is None else sound.speech,
        dub_audio=dub_audio, dub_speech=dub_speech, target=timeline.source_index, dub_closures=closures, measured=lm["measured"],
        pose_points=fg.canonical_points(lm["landmarks"], lm["to_canonical"], fg.POSE_POINTS),
        faces=faces[0] if faces else None, dub_wave=dub, dub_rate=rate, fps=timeline.fps,
    )
    result = generator.generate(request)
    mouths, mouth_jaws = fit_jaws(result, lm, timeline.source_index, size) if cfg.fit_jaw else (result.mouths, moved_jaws(result, lm, timeline.n_frames))

    def mask(j: int) -> np.ndarray:
        if result.chosen[j] < 0:
            return np.zeros(result.mouths.shape[1:3], np.uint8)
        t = timeline.source_index[j]
        jaw = fg.mask_jaw(lm["jaw"][t], mouth_jaws[j])
        return np.round(fg.lower_face_mask(jaw, lm["nose"][t], size, cfg.mask_feather_px) * 255).astype(np.uint8)

    write_frames(out_dir / "masks.npy", LazyFrames.made(timeline.n_frames, result.mouths.shape[1:3], mask))
    write_frames(out_dir / "mouths.npy", mouths)
    np.savez_compressed(
        out_dir / "selection.npz", target=timeline.source_index, chosen=result.chosen, predicted_opening=result.predicted_opening, dub_speech=dub_speech,
        dub_closures=np.zeros(timeline.n_frames, bool) if closures is None else closures, fps=timeline.fps, audio_duration_s=timeline.audio_duration_s,
        moves=np.tile(np.eye(2, 3), (timeline.n_frames, 1, 1)) if result.moves is None else result.moves,
    )
    generated = result.chosen >= 0
    return GenerateRecord(
        backend=cfg.backend,
        mapping=result.mapping,
        n_output_frames=timeline.n_frames,
        output_fps=timeline.fps,
        sync_mode=timeline.mode.value,
        audio_duration_s=timeline.audio_duration_s,
        frames_generated=int(generated.sum()),
        distinct_source_frames=int(len(np.unique(result.chosen[generated]))),
        mean_run_length=_runs(result.chosen),
        longest_hold_in_speech=_longest_hold(result.chosen, dub_speech if closures is None else dub_speech & ~closures),
        dub_speech_ratio=float(dub_speech.mean()),
        bilabial_frames=0 if closures is None else int(closures.sum()),
        source_offset_frames=0.0 if sound is None else sound.offset_frames,
    )


def moved_jaws(result: GenerateResult, lm: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """(n, 17, 2) each mouth's own jaw line where its move puts it on the target frame (canonical)."""
    jaws = lm["jaw"][np.maximum(result.chosen, 0)]
    return jaws if result.moves is None else np.einsum("nij,nkj->nki", result.moves[:, :, :2], jaws) + result.moves[:, None, :, 2]


def fit_jaws(result: GenerateResult, lm: Mapping[str, np.ndarray], target: np.ndarray, size: int) -> tuple[LazyFrames, np.ndarray]:
    """Each generated mouth warped so its jaw line lands on its target frame's
    (face_geometry.fitted_jaw), and where each jaw lands (for the masks)."""
    n = len(target)
    moves = np.tile(np.eye(2, 3), (n, 1, 1)) if result.moves is None else result.moves
    own = moved_jaws(result, lm, n)
    landed = np.stack([fg.fitted_jaw(lm["jaw"][t], o) for t, o in zip(target, own)]) if n else own
    corner = np.array(fg.mouth_box(size)[:2], np.float32)
    lips = lm["lips"][np.maximum(result.chosen, 0)] if result.lips is None else result.lips

    def fit(j: int, patch: np.ndarray) -> np.ndarray:
        c = result.chosen[j]
        if c < 0 or not np.isfinite(landed[j]).all():
            return patch
        back = fg.apply(fg.invert(moves[j]), landed[j])  # in the mouth's own canonical face, before its move
        return mouth_warp.fit_jaw(patch, lm["jaw"][c] - corner, back - corner, lips[j] - corner)

    def take(idx: np.ndarray) -> np.ndarray:  # a block at a time, as the generator's own mouths are made
        made = np.asarray(result.mouths[idx])
        return np.stack([fit(int(j), p) for j, p in zip(idx, made)]) if len(idx) else made

    return LazyFrames(n, tuple(result.mouths.shape[1:]), take), np.where((result.chosen >= 0)[:, None, None], landed, own)


def run_generate(clip: ClipRun) -> GenerateRecord:
    probe_rec = clip.record("probe", ProbeRecord)
    stream = video_stream(clip.video, probe_rec)
    at = clip.layout.artifact
    cfg = clip.config
    return clip.run(
        # a learned backend's checkpoint by its content: new weights at the same path redo the stage
        "generate", ["generate", "remux.sync_mode"], ["probe", "audio_clean", "stabilize"], [cfg.generate.weights] if cfg.generate.weights else [], GenerateRecord,
        # one call, but on the engine: the generator's model lives where the others do
        lambda out: clip.engine.map(generate, [(clip.video, probe_rec, stream, at("stabilize", "landmarks.npz"), at("audio_clean", "analysis.wav"), at("audio_clean", "source_analysis.wav"), out, cfg.generate, cfg.remux.sync_mode)])[0],
    )


generate_task = stage_task(run_generate)
