"""Synthetic talking-head fixtures built from scikit-image's bundled astronaut photo (no downloads).

The mouth and the speech-like audio follow one known envelope, so sync can be checked against ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np
import soundfile as sf

# Head-and-shoulders crop of astronaut() (rows, cols) and mouth geometry in a 256 px frame.
_CROP = (0, 240, 105, 345)
_MOUTH_CX, _MOUTH_Y, _MOUTH_HW = 126.5, 156.0, 24.0
_MAX_DROP = 26.0  # lower-lip travel (px at 256) when fully open
_LIP_RGB = np.array([170, 80, 85], np.float32)
_INSIDE_RGB = np.array([55, 18, 22], np.float32)
# (F1, F2, F3) in Hz for a, e, i, o, u.
_VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240))


@dataclass(frozen=True)
class TalkingFace:
    """Paths and ground truth of a synthetic talking-head clip."""

    video_path: Path
    fps: float
    n_frames: int
    mouth_opening: np.ndarray  # per video frame, 0..1, the envelope the mouth followed
    audio_path: Path | None  # separate wav if requested


def speech_envelope(duration_s: float, fps: float, seed: int = 0) -> np.ndarray:
    """Per-video-frame syllable envelope in [0,1]: syllables of ~120-250 ms at ~4 Hz, grouped in
    phrases with pauses of >= 0.5 s of exact zeros, starting and ending with ~0.3 s of silence.

    One envelope drives both the mouth and the audio, so it is the ground truth for sync checks."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fps))
    t = np.arange(n) / fps
    end = duration_s - 0.3
    syl: list[list[float]] = []  # [start, length, amplitude]
    pauses: list[int] = []  # indices of syllables that open a new phrase
    start = 0.3
    while start + 0.12 <= end:
        if syl:
            pauses.append(len(syl))
        for _ in range(int(rng.integers(3, 8))):
            d = rng.uniform(0.12, 0.25)
            if start + d > end:
                break
            syl.append([start, d, rng.uniform(0.5, 1.0)])
            start += d + rng.uniform(0.03, 0.1)
        start = syl[-1][0] + syl[-1][1] + rng.uniform(0.5, 0.8) if syl else end
    breaks = [k for k in pauses if k < len(syl)] or list(range(1, len(syl)))
    if breaks:  # spread the leftover over the gaps so speech ends ~0.3 s before the end
        extra = (end - syl[-1][0] - syl[-1][1]) / len(breaks)
        for i, shift in enumerate(np.searchsorted(breaks, np.arange(len(syl)), side="right") * extra):
            syl[i][0] += shift
    env = np.zeros(n)
    for s0, d, amp in syl:
        u = (t - s0) / d
        inside = (u > 0) & (u < 1)
        env[inside] = np.maximum(env[inside], amp * np.sin(np.pi * u[inside]))
    return np.clip(env, 0.0, 1.0)


def synth_speech(opening: np.ndarray, fps: float, sample_rate: int = 16000, seed: int = 0,
                 f0_hz: float = 120.0) -> np.ndarray:
    """Speech-like float32 mono signal whose loudness follows `opening` (interpolated smoothly to audio rate):
    a glottal pulse train with jittered f0 through 3 vowel formant resonators (vary formants per syllable),
    plus a little noise; exact near-silence (tiny noise at about -70 dBFS) where opening is 0. Peak about -6 dBFS.

    Formant-shaped voiced audio makes VAD, loudness and audio-visual sync code behave as on real speech."""
    from scipy.interpolate import PchipInterpolator  # scipy is slow to import; only needed here
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    opening = np.asarray(opening, np.float64)
    n = int(round(len(opening) / fps * sample_rate))
    ts = np.arange(n) / sample_rate
    tf = (np.arange(len(opening)) + 0.5) / fps
    env = PchipInterpolator(tf, opening)(ts) if len(opening) > 1 else np.interp(ts, tf, opening)
    env = np.clip(env, 0.0, 1.0) * (np.interp(ts, tf, (opening > 0).astype(float)) > 0)  # exact zeros stay zero
    # Glottal source: f0 with slow intonation and per-period jitter; one pulse per period.
    f0 = f0_hz * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * ts + rng.uniform(0, 6.3)))
    grid = np.arange(int(n / sample_rate / 0.01) + 2) * 0.01
    f0 *= 1 + 0.02 * np.interp(ts, grid, rng.standard_normal(len(grid)))  # 10 ms jitter
    phase = np.cumsum(f0 / sample_rate)
    src = np.diff(np.floor(phase), prepend=0.0)
    src = lfilter([1.0], [1.0, -1.9, 0.9025], src)  # glottal low-pass (double pole at 0.95)
    src = np.diff(src, prepend=0.0)  # lip radiation
    # Vowel per syllable: syllables are separated by local minima of the envelope.
    prev, nxt = np.r_[np.inf, opening[:-1]], np.r_[opening[1:], np.inf]
    syl = np.cumsum((opening <= prev) & (opening < nxt))
    vid = rng.integers(0, len(_VOWELS), syl.max() + 1 if len(syl) else 1)[syl]
    out = np.zeros(n)
    for k, formants in enumerate(_VOWELS):
        w = np.interp(ts, tf, (vid == k).astype(float))
        if not w.any():
            continue
        y = src
        for f, bw in zip(formants, (80.0, 100.0, 140.0)):  # cascade of 2-pole resonators, unity gain at DC
            r = np.exp(-np.pi * bw / sample_rate)
            a = [1.0, -2.0 * r * np.cos(2 * np.pi * f / sample_rate), r * r]
            y = lfilter([sum(a)], a, y)
        out += w * y / (np.std(y) + 1e-12)
    out += 0.05 * rng.standard_normal(n)  # breath noise
    out *= env * 0.5 / max(float(np.max(np.abs(out * env), initial=0.0)), 1e-12)  # peak -6 dBFS
    out += 10 ** (-70 / 20) * rng.standard_normal(n)
    return out.astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono (n,) or multichannel (n, ch) samples as 16-bit PCM WAV; the format every tool reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(samples, np.float32), int(sample_rate), subtype="PCM_16")
    return path


@lru_cache(maxsize=8)
def _base_face(size: int) -> np.ndarray:
    """Face crop with the original (smiling, teeth showing) mouth painted out, at `size`."""
    from skimage.data import astronaut

    y0, y1, x0, x1 = _CROP
    img = cv2.resize(astronaut()[y0:y1, x0:x1], (256, 256), interpolation=cv2.INTER_AREA)
    mask = np.zeros((256, 256), np.uint8)
    cv2.ellipse(mask, (int(_MOUTH_CX), int(_MOUTH_Y)), (31, 14), 0, 0, 360, 255, -1)
    img = cv2.inpaint(img, mask, 9, cv2.INPAINT_TELEA)
    soft = cv2.GaussianBlur(img, (0, 0), 3)
    a = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 3)[..., None]
    img = (img * (1 - a) + soft * a).astype(np.uint8)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if size < 256 else cv2.INTER_CUBIC)


@lru_cache(maxsize=8)
def _jaw_field(size: int) -> np.ndarray:
    """Weight 0..1 of how far each pixel follows the lower lip (chin 1, cheeks/neck fading to 0)."""
    m = np.zeros((256, 256), np.float32)
    cv2.ellipse(m, (int(_MOUTH_CX), int(_MOUTH_Y) + 24), (42, 44), 0, 0, 360, 1.0, -1)
    m[: int(_MOUTH_Y) - 1] = 0
    m = cv2.GaussianBlur(m, (0, 0), 7)
    return cv2.resize(m / m.max(), (size, size), interpolation=cv2.INTER_LINEAR)


def face_frame(opening: float, size: int = 256) -> np.ndarray:
    """RGB uint8 frame (size x size) of the astronaut's face (crop the face region of skimage.data.astronaut(),
    roughly the head and shoulders, resized to size), with the mouth re-drawn to be open by `opening`
    (0 closed, 1 wide open): a dark mouth interior ellipse with lip-coloured upper and lower lips, the lower
    lip and chin region moving down with opening, so that MediaPipe's face mesh sees the inner lips part."""
    o = float(np.clip(opening, 0.0, 1.0))
    s = size / 256.0
    base = _base_face(size).astype(np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / s  # in 256-px units
    cx, my, hw = _MOUTH_CX, _MOUTH_Y, _MOUTH_HW * (1 - 0.1 * o)
    up, down = 0.2 * _MAX_DROP * o, 0.8 * _MAX_DROP * o
    # Jaw drop: the lower face moves down with a smooth falloff onto the cheeks and neck.
    frame = cv2.remap(base, xs * s, (ys - down * _jaw_field(size)) * s, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    # Lips and interior as soft-edged shapes bounded by curves over t in [-1, 1] across the mouth.
    t = (xs - cx) / hw
    arc = np.sqrt(np.clip(1 - t * t, 0, 1))
    side = np.clip((1 - np.abs(t)) * hw, 0, 1)
    inner_top, inner_bot = my - up * arc ** 0.7, my + down * arc ** 0.7
    thick = arc ** 0.8
    outer_top = inner_top - thick * (6.0 + 1.5 * np.exp(-((np.abs(t) - 0.3) / 0.2) ** 2))
    outer_bot = inner_bot + 8.5 * thick
    soft = lambda d: np.clip(0.5 + d * s, 0, 1)  # noqa: E731  signed distance (256-px units) -> coverage
    lips = (soft(ys - outer_top) * soft(outer_bot - ys) * side)[..., None]
    mouth = (soft(ys - inner_top + 0.6) * soft(inner_bot + 0.6 - ys) * side)[..., None]
    shade = 0.85 + 0.15 * np.clip((ys - inner_bot)[..., None] / 9.0, -1, 1)  # lower lip lit from below
    frame = frame * (1 - lips) + _LIP_RGB * shade * lips
    inside = _INSIDE_RGB * (1 - 0.4 * np.clip((ys - my) / (down + 1), 0, 1))[..., None]
    frame = frame * (1 - mouth) + inside * mouth
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def _write_mp4(path: Path, frames, fps: float, size: tuple[int, int],
               audio: np.ndarray | None = None, sample_rate: int = 44100) -> Path:
    """Encode RGB frames as H.264 yuv420p (CRF 18, constant rate) plus optional AAC audio (n, ch)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        layout = None if audio is None else ("stereo" if audio.shape[1] == 2 else "mono")
        ast = out.add_stream("aac", rate=sample_rate, layout=layout) if layout else None
        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i  # constant frame rate: pts in units of 1/fps
            out.mux(vs.encode(vf))
        out.mux(vs.encode())
        if ast is not None:
            data = np.ascontiguousarray(audio.T.astype(np.float32))
            for a0 in range(0, data.shape[1], 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, a0:a0 + 1024]), format="fltp",
                                                layout=ast.layout.name)
                af.sample_rate, af.pts = sample_rate, a0
                out.mux(ast.encode(af))
            out.mux(ast.encode())
    return path


def make_talking_face(path: Path, duration_s: float = 4.0, fps: float = 25.0, size: int = 256, *, seed: int = 0,
                      with_audio: bool = True, audio_shift_frames: int = 0, audio_stretch: float = 1.0,
                      sample_rate: int = 44100, separate_audio_path: Path | None = None,
                      background: str = "plain") -> TalkingFace:
    """Write an H.264 MP4 (yuv420p, CRF ~18, constant frame rate `fps`) with PyAV whose mouth follows
    speech_envelope(); if with_audio, mux an AAC track of synth_speech() (stereo) into it; audio_shift_frames > 0
    delays the audio by that many frames (positive = audio late), audio_stretch scales the audio's time axis
    (1.01 = audio 1 % longer/slower, for growing drift); the muxed track is cut/padded to the video length.
    separate_audio_path, if given, also writes the (unshifted) speech as a WAV there. `background` is "plain"
    (studio backdrop as photographed) or "noisy" (per-frame sensor grain, for robustness tests).
    Returns a TalkingFace carrying the ground-truth envelope."""
    if background not in ("plain", "noisy"):
        raise ValueError(f"background must be 'plain' or 'noisy', not {background!r}")
    opening = speech_envelope(duration_s, fps, seed)
    n, rng = len(opening), np.random.default_rng(seed + 1)

    def frames():
        for o in opening:
            img = face_frame(float(o), size)
            if background == "noisy":
                img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
            yield img

    speech = synth_speech(opening, fps, sample_rate, seed) if (with_audio or separate_audio_path) else None
    audio = None
    if with_audio:
        n_out = int(round(n / fps * sample_rate))
        idx = np.arange(n_out) / audio_stretch - audio_shift_frames / fps * sample_rate
        floor = 10 ** (-70 / 20) * rng.standard_normal(n_out)
        valid = (idx >= 0) & (idx <= len(speech) - 1)
        mono = np.where(valid, np.interp(idx, np.arange(len(speech)), speech), floor).astype(np.float32)
        audio = np.stack([mono, mono], axis=1)
    _write_mp4(path, frames(), fps, (size, size), audio, sample_rate)
    wav = write_wav(separate_audio_path, speech, sample_rate) if separate_audio_path is not None else None
    return TalkingFace(Path(path), float(fps), n, opening, wav)


def make_still_image(path: Path, size: int = 256, opening: float = 0.0) -> Path:
    """PNG of the face, lips parted by `opening` (0: closed, 1: widest): input for the
    still-image (photo) path."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), face_frame(opening, size)[..., ::-1])
    return Path(path)


def _speaking_shot(path: Path, duration_s: float, fps: float, seed: int, size: tuple[int, int], picture) -> Path:
    """A clip whose picture(opening, frame index) follows a speech envelope, with that
    speech as its soundtrack: the shape every talking fixture shares."""
    opening = speech_envelope(duration_s, fps, seed=seed)
    audio = synth_speech(opening, fps, 44100, seed=seed)
    return _write_mp4(path, (picture(float(o), i) for i, o in enumerate(opening)), fps, size, np.stack([audio, audio], 1), 44100)


def make_face_leaves_video(path: Path, duration_s: float = 4.0, fps: float = 25.0, gone: tuple[float, float] = (1.5, 2.5)) -> Path:
    """The talking face, cut away to a faceless backdrop between `gone` seconds (a cutaway shot)."""
    backdrop = np.empty((256, 256, 3), np.uint8)
    backdrop[:] = _base_face(256)[8, 8]
    return _speaking_shot(path, duration_s, fps, 4, (256, 256), lambda o, i: backdrop.copy() if gone[0] <= i / fps < gone[1] else face_frame(o, 256))


def make_close_up_video(path: Path, duration_s: float = 3.0, fps: float = 25.0) -> Path:
    """The talking face filmed closer: a 256 px window on a 400 px face, forehead and
    cheeks cut by the frame edges, so any padded crop around the face leaves the frame."""
    return _speaking_shot(path, duration_s, fps, 6, (256, 256), lambda o, i: np.ascontiguousarray(face_frame(o, 400)[84:340, 72:328]))


def make_faceless_video(path: Path, duration_s: float = 2.0, fps: float = 25.0, size: int = 128) -> Path:
    """Smooth, slowly changing colour-noise video with no face: exercises the no-face error path."""
    rng = np.random.default_rng(0)
    n = int(round(duration_s * fps))
    keys = rng.uniform(0, 255, (n // 10 + 2, 8, 8, 3)).astype(np.float32)

    def frames():
        for i in range(n):
            k, w = divmod(i / 10.0, 1.0)
            small = keys[int(k)] * (1 - w) + keys[int(k) + 1] * w
            yield cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)

    return _write_mp4(path, frames(), fps, (size, size))


def make_two_faces_video(path: Path, duration_s: float = 2.0, fps: float = 25.0) -> Path:
    """Two faces on a 448x256 canvas, 256 px (talking) and 160 px (still): tests picking the main speaker."""
    opening = speech_envelope(duration_s, fps, seed=0)
    small = face_frame(0.0, 160)
    canvas = np.empty((256, 448, 3), np.uint8)
    canvas[:] = _base_face(256)[8, 8]  # backdrop colour

    def frames():
        for o in opening:
            canvas[:, :256] = face_frame(float(o), 256)
            canvas[48:208, 272:432] = small
            yield canvas.copy()

    audio = synth_speech(opening, fps, 44100)
    return _write_mp4(path, frames(), fps, (448, 256), np.stack([audio, audio], 1), 44100)
