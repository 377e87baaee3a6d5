"""From a sync measurement to a repair: re-time, stretch, slide, in that order.

Re-timing first (a wrong declared rate or variable frame rate becomes a constant
rate at the real one) changes where frames sit in time, so the offset and drift the
audio correction uses are measured on the re-timed clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from lipdub import media
from lipdub.sync import SyncResult


@dataclass
class RepairPlan:
    retime_fps: Fraction | None = None
    tempo: float = 1.0  # audio plays this much faster (pitch kept)
    delay_s: float = 0.0  # then moves this much later (negative: earlier)
    steps: list[str] = field(default_factory=list)


def needs_retime(finding_names: set[str]) -> bool:
    return bool(finding_names & {"fps_declared_mismatch", "vfr"})


def plan_audio(result: SyncResult, fps: float, plan: RepairPlan, slide_above_frames: float) -> RepairPlan:
    """Offsets are `audio late` in frames; the fix plays the audio earlier by as much.

    With drift the lateness grows as d(t) = d0 + r t, so the audio is sped up by
    (1 + r) and then moved by d0. A constant offset is slid when it is above
    slide_above_frames, inside the fine tolerance too: a viewer may not notice 1.8
    frames, but someone who asks for a repair wants 0."""
    if result.sync_class == "growing_drift" and np.isfinite(result.drift_frames_per_min):
        rate = result.drift_frames_per_min / 60.0 / fps  # seconds of extra lateness per second
        if np.isfinite(result.offset_at_zero_frames):  # fitted with the rate, on the whole clip
            d0 = result.offset_at_zero_frames / fps
        else:
            mid = np.mean([(w.start_s + w.end_s) / 2 for w in result.windows])
            d0 = np.mean([w.offset_frames for w in result.windows]) / fps - rate * mid
        plan.tempo = 1.0 + rate
        plan.delay_s = -d0 / plan.tempo
        plan.steps.append(f"stretch audio x{1 / plan.tempo:.5f} (drift {result.drift_frames_per_min:+.2f} frames/min, pitch kept)")
        plan.steps.append(f"slide audio {plan.delay_s * 1000:+.0f} ms")
    elif result.sync_class != "cannot_tell" and abs(result.offset_frames) > slide_above_frames:
        plan.delay_s = -result.offset_frames / fps
        plan.steps.append(f"slide audio {plan.delay_s * 1000:+.0f} ms ({-result.offset_frames:+.2f} frames)")
    return plan


def apply(video: Path, audio: Path | None, plan: RepairPlan, out_path: Path, audio_bitrate: int = 192_000) -> None:
    """Write the repaired clip: the video's own frames, the corrected audio, no new shift."""
    samples, rate = media.read_audio(audio or video)
    if audio is None:  # keep the picture's clock: drop audio that starts before the first frame
        info = media.probe(video)
        lead = info.video.start_time_s - info.audio.start_time_s
        samples = media.shift_audio(samples, rate, -lead) if abs(lead) * rate >= 1 else samples
    if plan.tempo != 1.0:
        samples = media.time_stretch(samples, rate, plan.tempo)
    if plan.delay_s:
        samples = media.shift_audio(samples, rate, plan.delay_s)
    media.remux_with_audio(video, samples, rate, out_path, plan.retime_fps, audio_bitrate)
