"""remux: the blended segments and the delivered dub into one MP4 that plays in sync everywhere.

H.264 segments are joined by packet copy (no second encode), audio is AAC; constant
frame rate, +faststart, avoid_negative_ts=make_zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from lipdub import media
from lipdub.infra.config import RemuxConfig
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task
from lipdub.tasks.blend import BlendRecord


class RemuxRecord(BaseModel):
    frames: int
    fps: float
    duration_s: float
    audio_padded_s: float
    audio_cut_s: float


def fit_audio(samples: np.ndarray, sample_rate: int, duration_s: float) -> tuple[np.ndarray, float, float]:
    """Pad with silence or cut so the audio lasts exactly duration_s; returns (audio, padded_s, cut_s)."""
    n = int(round(duration_s * sample_rate))
    if len(samples) >= n:
        return samples[:n], 0.0, (len(samples) - n) / sample_rate
    pad = np.zeros((n - len(samples), samples.shape[1]), samples.dtype)
    return np.concatenate([samples, pad]), (n - len(samples)) / sample_rate, 0.0


def remux(segment_dir: Path, segments: list[str], delivery_wav: Path, selection_npz: Path, out_dir: Path, cfg: RemuxConfig) -> RemuxRecord:
    sel = np.load(selection_npz)
    fps, duration = float(sel["fps"]), float(sel["audio_duration_s"])
    audio, rate = media.read_audio(delivery_wav)
    audio, padded, cut = fit_audio(audio, rate, duration)
    media.remux([segment_dir / s for s in segments], audio, rate, out_dir / "output.mp4", media.fps_fraction(fps), cfg.audio_bitrate)
    return RemuxRecord(frames=len(sel["target"]), fps=fps, duration_s=duration, audio_padded_s=padded, audio_cut_s=cut)


def run_remux(clip: ClipRun) -> RemuxRecord:
    at = clip.layout.artifact
    segments = clip.record("blend", BlendRecord).segments
    return clip.run(
        "remux", ["remux"], ["audio_clean", "blend"], [], RemuxRecord,
        lambda out: remux(at("blend", "segments"), segments, at("audio_clean", "delivery.wav"), at("generate", "selection.npz"), out, clip.config.remux),
    )


remux_task = stage_task(run_remux)
