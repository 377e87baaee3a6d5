"""Named causes of sync trouble, each with its evidence, from stream facts and audio levels.

Every finding is something a person would otherwise dig out of ffprobe or Audacity:
a declared frame rate the frames do not keep, variable frame rate, an audio clock
that disagrees with its own header, streams that start at different times (the
usual re-encode shift), lengths that differ, a noisy or gappy soundtrack; and a
picture that loops, which the sync reading itself can be fooled by.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from lipdub import media
from lipdub.audio_features import frame_rms_db, runs, speech_threshold_db, to_mono
from lipdub.sync import mouth_features


class Finding(BaseModel):
    name: str
    severity: str  # info | warning | problem
    evidence: str
    value: float | None = None


AAC_PRIMING_SAMPLES = 1024  # an AAC encoder's first frame: decoder warm-up, not sound


def _is_aac_priming(a: media.AudioStreamInfo, start_gap_s: float) -> bool:
    """An AAC stream one priming frame ahead of the picture.

    Shifting every timestamp to start at zero (avoid_negative_ts make_zero, as FFmpeg and
    lipdub write MP4) moves the priming frame's negative start out of the edit list, so
    the stream starts 1024 samples early while its first sound lands on the first frame.
    Within 2 ms: the muxer rounds the shift to the video's time base."""
    return a.codec == "aac" and a.sample_rate > 0 and abs(start_gap_s + AAC_PRIMING_SAMPLES / a.sample_rate) <= 0.002


def stream_findings(info: media.MediaInfo, audio_info: media.MediaInfo | None = None, decoded_audio_s: float | None = None, fps_tolerance: float = 0.01) -> list[Finding]:
    """Findings from container and stream facts (no decoding of pictures)."""
    out: list[Finding] = []
    v = info.video
    a = (audio_info or info).audio
    if v is None:
        return out
    if abs(v.declared_fps - v.actual_fps) > fps_tolerance * v.actual_fps:
        out.append(Finding(name="fps_declared_mismatch", severity="problem", evidence=f"declares {v.declared_fps:.3f} fps but has {v.n_frames} frames in {v.duration_s:.3f} s = {v.actual_fps:.3f} fps", value=v.actual_fps))
    durations = np.diff(np.asarray(v.frame_pts, dtype=np.float64)) * float(v.time_base)
    if len(durations) > 1 and durations.mean() > 0 and np.ptp(durations) / durations.mean() > 0.02:
        out.append(Finding(name="vfr", severity="warning", evidence=f"frame durations range {durations.min() * 1000:.1f}-{durations.max() * 1000:.1f} ms (variable frame rate)", value=float(np.ptp(durations))))
    if a is None:
        return out
    if decoded_audio_s is not None and a.duration_s > 0 and abs(decoded_audio_s - a.duration_s) > max(0.1, 0.005 * a.duration_s):
        ratio = decoded_audio_s / a.duration_s
        out.append(Finding(name="audio_rate_mismatch", severity="problem", evidence=f"audio header says {a.sample_rate} Hz and {a.duration_s:.3f} s but its samples last {decoded_audio_s:.3f} s (x{ratio:.4f})", value=ratio))
    if audio_info is None:  # streams of one file: their start times must agree
        start_gap = a.start_time_s - v.start_time_s
        if _is_aac_priming(a, start_gap):
            out.append(Finding(name="encoder_priming", severity="info", evidence=f"audio starts {-start_gap * 1000:.0f} ms before the first frame: the AAC encoder's {AAC_PRIMING_SAMPLES} priming samples, which decode to silence ahead of the sound; not a shift", value=start_gap))
        elif abs(start_gap) > 0.5 / v.actual_fps:
            severity = "problem" if abs(start_gap) * v.actual_fps > 1.0 else "info"
            out.append(Finding(name="stream_start_offset", severity=severity, evidence=f"audio starts {start_gap * 1000:+.0f} ms from the first frame ({start_gap * v.actual_fps:+.1f} frames): an edit list or re-encode shift", value=start_gap))
        if v.start_time_s < 0 or a.start_time_s < 0:
            out.append(Finding(name="negative_timestamps", severity="warning", evidence=f"stream start times video {v.start_time_s:.3f} s, audio {a.start_time_s:.3f} s", value=min(v.start_time_s, a.start_time_s)))
    gap = a.duration_s - v.duration_s
    if abs(gap) > max(0.1, 1.5 / v.actual_fps):
        out.append(Finding(name="duration_mismatch", severity="warning", evidence=f"audio {a.duration_s:.3f} s vs video {v.duration_s:.3f} s ({gap:+.3f} s)", value=gap))
    return out


def audio_findings(samples: np.ndarray, sample_rate: int, noise_limit_dbfs: float = -40.0, max_silence_s: float = 1.0) -> list[Finding]:
    """Findings from the soundtrack's levels: a high noise floor, long silences."""
    mono = to_mono(samples)
    if len(mono) < sample_rate // 10:
        return [Finding(name="no_audio", severity="problem", evidence="the audio stream is empty")]
    level = frame_rms_db(mono, sample_rate)
    out: list[Finding] = []
    floor = float(np.percentile(level, 10))
    if floor > noise_limit_dbfs:
        out.append(Finding(name="noisy_audio", severity="warning", evidence=f"noise floor {floor:.1f} dBFS (above {noise_limit_dbfs:.0f})", value=floor))
    silent = level <= speech_threshold_db(level, -35.0)
    long_runs = [(a, b) for a, b in runs(silent) if (b - a) * 0.01 > max_silence_s]
    if long_runs:
        spans = ", ".join(f"{a * 0.01:.1f}-{b * 0.01:.1f} s" for a, b in long_runs[:5])
        out.append(Finding(name="long_silence", severity="info", evidence=f"{len(long_runs)} silence(s) over {max_silence_s:.0f} s: {spans}", value=max((b - a) * 0.01 for a, b in long_runs)))
    return out


MIN_REPEAT_S = 1.0  # a mouth that moves the same way again after at least this long
REPEAT_R = 0.9  # ... this closely: looped real clips 0.988-0.999, the clips themselves at most 0.43
MAX_REPEAT_S = 120.0  # loops up to two minutes long are looked for (a 20 min clip: a few seconds)


def repeat_findings(lips: np.ndarray, valid: np.ndarray, fps: float) -> list[Finding]:
    """A picture that loops: the whole mouth motion again after one period.

    A loop repeats the same second of lips and sound over and over, which no real
    footage does, so a lag or rate that fits one repeat fits them all; sync readings of
    loops have locked a syllable or more off before (benchmarks/HISTORY.md), so the
    doctor asks for a check by eye. lips: (frames, points, 2) canonical."""
    feats = mouth_features(lips)
    if valid.sum() < 2 or (spread := feats[valid].std(axis=0)).min() < 1e-3:
        return []  # a mouth that never moves (a still picture, canonical pixels) repeats trivially
    z = (feats - feats[valid].mean(axis=0)) / spread
    r = np.full(min(len(z) // 2, int(MAX_REPEAT_S * fps)) + 1, -1.0)
    for lag in range(max(1, int(round(MIN_REPEAT_S * fps))), len(r)):
        both = valid[:-lag] & valid[lag:]
        if both.sum() >= lag // 2:
            r[lag] = np.corrcoef(z[:-lag][both].ravel(), z[lag:][both].ravel())[0, 1]
    above = runs(r >= REPEAT_R)
    if not above:
        return []
    start, stop = above[0]  # the shortest lags that repeat: one period (the others are its multiples)
    period = start + int(np.argmax(r[start:stop]))
    return [Finding(name="looped_picture", severity="warning", value=period / fps,
                    evidence=f"the mouth moves the same way again every {period / fps:.2f} s (r {r[period]:.3f}): a loop, on which the sync reading can lock a syllable or more off; check the offset by eye")]


def all_findings(video: Path, audio: Path | None) -> tuple[list[Finding], media.MediaInfo]:
    info = media.probe(video)
    audio_info = media.probe(audio) if audio else None
    samples, rate = media.read_audio(audio or video)
    findings = stream_findings(info, audio_info, len(samples) / rate if rate else None)
    return findings + audio_findings(samples, rate), info
