"""repair: re-time, stretch and slide as the analysis says, remux without a new shift, measure again."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from lipdub import media
from lipdub.doctor.plot import plot_offsets
from lipdub.doctor.repair import RepairPlan, apply, needs_retime, plan_audio
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.config import DriftConfig
from lipdub.infra.prefect_task import stage_task
from lipdub.sync import SyncResult, worst_on_drift_line
from lipdub.tasks.drift import SyncMetrics, measure_file
from lipdub.tasks.sync_analysis import SyncAnalysisRecord


class RepairRecord(BaseModel):
    steps: list[str]
    after: SyncMetrics
    windows_after: list[dict]


def repair(video: Path, audio: Path | None, landmarks_npz: Path, analysis: SyncAnalysisRecord, out_dir: Path, cfg: DriftConfig, analysis_rate: int, audio_bitrate: int = 192_000) -> RepairRecord:
    names = {f.name for f in analysis.findings}
    plan = RepairPlan()
    retime = needs_retime(names)
    if retime:  # frames move in time: the audio correction is measured on the new clock
        plan.retime_fps = media.fps_fraction(analysis.fps)
        plan.steps.append(f"re-time video to a constant {float(plan.retime_fps):.3f} fps")
        before, _ = measure_file(video, audio, landmarks_npz, cfg, analysis_rate, retime=True)
    else:
        before = analysis.sync.result(analysis.windows)
    plan = plan_audio(before, analysis.fps, plan, cfg.slide_above_frames)
    fixed = out_dir / "fixed.mp4"
    apply(video, audio, plan, fixed, audio_bitrate)
    after, _ = measure_file(fixed, None, landmarks_npz, cfg, analysis_rate)
    if after.verdict not in ("fine", "unknown") or after.sync_class == "growing_drift":
        after = _second_pass(fixed, after, analysis.fps, plan, landmarks_npz, cfg, analysis_rate, audio_bitrate)
    plot_offsets(before, out_dir / "sync.png", f"{video.name}: after repair {after.sync_class}", cfg.fine_frames, cfg.noticeable_frames, after=after)
    return RepairRecord(steps=plan.steps or ["none needed: remuxed as is"], after=SyncMetrics.of(after), windows_after=[w.__dict__ for w in after.windows])


def _worst_offset(result: SyncResult) -> float:
    """The largest offset a viewer sees over the clip, in frames (inf when there is no reading)."""
    if result.sync_class == "cannot_tell" or not result.windows:
        return float("inf") if result.sync_class == "cannot_tell" else abs(result.offset_frames)
    if result.sync_class == "growing_drift":
        return abs(worst_on_drift_line(result.offset_at_zero_frames, result.drift_frames_per_min, result.windows[0].start_s, result.windows[-1].end_s))
    return abs(result.offset_frames)


def _second_pass(fixed: Path, after: SyncResult, fps: float, plan: RepairPlan, landmarks_npz: Path, cfg: DriftConfig, analysis_rate: int, audio_bitrate: int) -> SyncResult:
    """Repair the repaired file once more from its own reading, as a person checking the
    result would; kept only if it reads better. A misread drift leaves a smaller drift
    behind, which reads cleanly once the first one is gone."""
    again = plan_audio(after, fps, RepairPlan(), cfg.slide_above_frames)
    if not again.steps:
        return after
    second = fixed.with_name("fixed.again.mp4")
    apply(fixed, None, again, second, audio_bitrate)
    reread, _ = measure_file(second, None, landmarks_npz, cfg, analysis_rate)
    if _worst_offset(reread) < _worst_offset(after):
        second.replace(fixed)
        plan.steps += [f"measured the repaired file again: {again.steps[0]}", *again.steps[1:]]
        return reread
    second.unlink()
    return after


def run_repair(clip: ClipRun) -> RepairRecord:
    audio = None if clip.audio == clip.video else clip.audio
    analysis = clip.record("sync_analysis", SyncAnalysisRecord)
    cfg = clip.config
    lm = clip.layout.artifact("stabilize", "landmarks.npz")
    return clip.run(
        "repair", ["drift", "audio.analysis_sample_rate", "remux.audio_bitrate"], ["sync_analysis"], [], RepairRecord,
        lambda out: repair(clip.video, audio, lm, analysis, out, cfg.drift, cfg.audio.analysis_sample_rate, cfg.remux.audio_bitrate),
    )


repair_task = stage_task(run_repair)
