"""What a clip run's stage records contribute to its manifest row."""

from __future__ import annotations

import json
from typing import Any

from lipdub.infra.clip_run import ClipRun
from lipdub.infra.manifest import DriftWindowRow


def clip_row(clip: ClipRun) -> dict[str, Any]:
    """Manifest fields from whichever stages finished (a failed run fills what it can)."""
    r = clip.records
    row: dict[str, Any] = {"probe_flags": []}
    if p := r.get("probe"):
        row |= dict(probe_flags=p.flags, declared_fps=p.declared_fps, actual_fps=p.actual_fps, n_frames=p.n_frames, dub_duration_s=p.dub_duration_s)
    if a := r.get("audio_clean"):
        d = a.dub
        row |= dict(dub_noise_floor_dbfs=d.noise_floor_dbfs, dub_peak_dbfs=d.peak_dbfs, dub_loudness_lufs=d.loudness_lufs, dub_longest_silence_s=d.longest_silence_s, dub_leading_silence_s=d.leading_silence_s, dub_trailing_silence_s=d.trailing_silence_s, dub_speech_ratio=d.speech_ratio)
    if f := r.get("face_detect"):
        row |= dict(frames_with_face=f.frames_with_face, median_face_px=f.median_face_px, max_faces_in_frame=f.max_faces_in_frame, detector=f.detector)
    if s := r.get("stabilize"):
        row |= dict(frames_usable=s.frames_usable, landmarker=s.landmarker)
    if g := r.get("generate"):
        row |= dict(frames_generated=g.frames_generated, generator=g.backend, generator_mapping=g.mapping, sync_mode=g.sync_mode)
    if e := r.get("enhance"):
        row |= dict(enhancer=e.backend)
    if b := r.get("blend"):
        row |= dict(video_crf=b.crf, video_trial_psnr_db=b.trial_psnr_db)
    if m := r.get("remux"):
        row |= dict(output_duration_s=m.duration_s)
    if d := r.get("drift"):
        row |= d.output.columns("after")
        if d.source:
            row |= d.source.columns("before")
    return row


WEAK = "weak evidence: check it by eye"  # a reading with a reason: the sound predicts the lips poorly (lipdub.sync.weak_reason)


def source_off_note(offset_frames: float | None, verdict: str | None, reason: str | None = None) -> str:
    """What a user should hear about the source itself: its own sound clearly off its lips,
    beyond the fine tolerance ("" when it is not). The dub is made in sync either way, and
    a reading on weak evidence (reason) is no alarm to raise about footage the user did not
    ask about: flag-woman's own sound, which predicts her lips at a held-out 0.19, read +1
    or -7 frames from two copies of the same sound (the file's and a denoised one). The
    manifest keeps the reading and its reason."""
    if offset_frames is None or reason or verdict in ("fine", "unknown", None):
        return ""
    return f"the source's own sound reads {offset_frames:+.1f} frames off its lips ({verdict})"


def output_sync(offset_frames: float | None, verdict: str | None, frames_generated: int | None, reason: str | None = None) -> str:
    """The output's sync as a run's line says it ("+0.4 frames (fine)"), or why there is none."""
    if offset_frames is not None:
        return f"{offset_frames:+.1f} frames ({verdict}{'; ' + WEAK if reason else ''})"
    if frames_generated == 0:
        return "n/a (no face dubbed: every frame passed through)"
    return "n/a"


def drift_rows(clip: ClipRun) -> list[DriftWindowRow]:
    if "drift" not in clip.records:
        return []
    windows = json.loads(clip.layout.artifact("drift", "windows.json").read_text())
    return [DriftWindowRow(run_id=clip.run_id, clip_id=clip.layout.clip_id, **w) for w in windows]
