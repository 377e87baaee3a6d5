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
from lipdub.tasks.drift import SyncMetrics
from lipdub.tasks.sync_analysis import SyncAnalysisRecord, measure_file


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
    plot_offsets(before, out_dir / "sync.png", f"{video.name}: after repair {after.sync_class}", cfg.fine_frames, cfg.noticeable_frames, after=after)
    return RepairRecord(steps=plan.steps or ["none needed: remuxed as is"], after=SyncMetrics.of(after), windows_after=[w.__dict__ for w in after.windows])


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
