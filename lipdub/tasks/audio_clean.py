"""audio_clean: measure the dub, and make the 16 kHz mono copy the models listen to.

The analysis copy is denoised (spectral gating) and peak-normalised; the delivered dub
keeps its samples and timing untouched, so what the viewer hears is what the user gave.
"""

from __future__ import annotations

from pathlib import Path

import noisereduce
import numpy as np
import pyloudnorm
import soxr
from pydantic import BaseModel

from lipdub import LipdubError, media
from lipdub.audio_features import dbfs, frame_rms_db, runs, speech_threshold_db, to_mono
from lipdub.infra.config import AudioConfig
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task
from lipdub.tasks.probe import ProbeRecord

HOP_S = 0.01


class AudioStats(BaseModel):
    duration_s: float
    sample_rate: int
    channels: int
    peak_dbfs: float
    noise_floor_dbfs: float
    loudness_lufs: float | None
    longest_silence_s: float
    leading_silence_s: float
    trailing_silence_s: float
    speech_ratio: float


class AudioRecord(BaseModel):
    dub: AudioStats
    source: AudioStats | None  # the video's own soundtrack, when it has one
    analysis_sample_rate: int
    trim_s: float = 0.0  # nothing is trimmed from the delivered dub; recorded for the manifest


def measure(samples: np.ndarray, sample_rate: int, cfg: AudioConfig) -> AudioStats:
    mono = to_mono(samples)
    level = frame_rms_db(mono, sample_rate, HOP_S)
    speech = level > speech_threshold_db(level, cfg.silence_threshold_db)
    silent_runs = [(a, b) for a, b in runs(~speech)]
    n = len(speech)
    leading = next((b - a for a, b in silent_runs if a == 0), 0)
    trailing = next((b - a for a, b in silent_runs if b == n), 0)
    try:
        lufs = float(pyloudnorm.Meter(sample_rate).integrated_loudness(samples if samples.ndim == 2 else mono))
        lufs = lufs if np.isfinite(lufs) else None
    except ValueError:  # shorter than one 400 ms gating block
        lufs = None
    return AudioStats(
        duration_s=len(mono) / sample_rate,
        sample_rate=sample_rate,
        channels=samples.shape[1] if samples.ndim == 2 else 1,
        peak_dbfs=float(dbfs(np.max(np.abs(mono)) if len(mono) else 0.0)),
        noise_floor_dbfs=float(np.percentile(level, 10)),
        loudness_lufs=lufs,
        longest_silence_s=max((b - a for a, b in silent_runs), default=0) * HOP_S,
        leading_silence_s=leading * HOP_S,
        trailing_silence_s=trailing * HOP_S,
        speech_ratio=float(speech.mean()) if n else 0.0,
    )


def analysis_copy(samples: np.ndarray, sample_rate: int, cfg: AudioConfig) -> np.ndarray:
    """16 kHz mono, spectral-gated, peak-normalised: the copy every model hears."""
    mono = soxr.resample(to_mono(samples), sample_rate, cfg.analysis_sample_rate, quality="HQ")
    if cfg.denoise and len(mono) > cfg.analysis_sample_rate // 2:
        mono = noisereduce.reduce_noise(y=mono, sr=cfg.analysis_sample_rate, stationary=True, prop_decrease=cfg.denoise_strength)
    peak = np.max(np.abs(mono)) if len(mono) else 0.0
    if peak > 0:
        mono = mono * (10 ** (cfg.peak_dbfs / 20) / peak)
    return mono.astype(np.float32)


def audio_clean(dub: Path, video: Path, out_dir: Path, cfg: AudioConfig, source_has_audio: bool) -> AudioRecord:
    """Write analysis.wav, delivery.wav (the dub, untouched) and source_analysis.wav."""
    samples, rate = media.read_audio(dub)
    if len(samples) == 0:
        raise LipdubError(dub, "audio stream is empty")
    dub_stats = measure(samples, rate, cfg)
    if dub_stats.peak_dbfs < -60 or dub_stats.speech_ratio < cfg.min_speech_ratio:
        raise LipdubError(dub, f"no speech found (peak {dub_stats.peak_dbfs:.0f} dBFS, speech ratio {dub_stats.speech_ratio:.2f})")
    media.write_wav(out_dir / "delivery.wav", samples, rate)
    media.write_wav(out_dir / "analysis.wav", analysis_copy(samples, rate, cfg), cfg.analysis_sample_rate)
    source_stats = None
    source_analysis = np.zeros(0, np.float32)
    if source_has_audio:
        src, src_rate = media.read_audio(video)
        if len(src):
            source_stats = measure(src, src_rate, cfg)
            source_analysis = analysis_copy(src, src_rate, cfg)
    media.write_wav(out_dir / "source_analysis.wav", source_analysis, cfg.analysis_sample_rate)
    return AudioRecord(dub=dub_stats, source=source_stats, analysis_sample_rate=cfg.analysis_sample_rate)


def run_audio_clean(clip: ClipRun) -> AudioRecord:
    has_audio = clip.record("probe", ProbeRecord).source_has_audio
    return clip.run("audio_clean", ["audio"], ["probe"], [clip.audio, clip.video], AudioRecord, lambda out: audio_clean(clip.audio, clip.video, out, clip.config.audio, has_audio))


audio_clean_task = stage_task(run_audio_clean)
