"""sync_analysis: measure a clip's own sync and name the causes (the sync doctor's first stage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from lipdub.doctor.findings import Finding, all_findings, repeat_findings
from lipdub.doctor.plot import plot_offsets
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.config import DriftConfig
from lipdub.infra.prefect_task import stage_task
from lipdub.tasks.drift import SyncMetrics, measure_file
from lipdub.tasks.stabilize import lips_for_sync


class SyncAnalysisRecord(BaseModel):
    fps: float
    frames: int
    duration_s: float
    sync: SyncMetrics
    offset_ms: float | None
    windows: list[dict]
    findings: list[Finding]


def sync_analysis(video: Path, audio: Path | None, landmarks_npz: Path, out_dir: Path, cfg: DriftConfig, analysis_rate: int) -> SyncAnalysisRecord:
    findings, _ = all_findings(video, audio)
    result, info = measure_file(video, audio, landmarks_npz, cfg, analysis_rate)
    findings += repeat_findings(*lips_for_sync(np.load(landmarks_npz)), info.video.actual_fps)
    metrics = SyncMetrics.of(result)
    plot_offsets(result, out_dir / "sync.png", f"{video.name}: {metrics.sync_class}, {metrics.verdict}", cfg.fine_frames, cfg.noticeable_frames, names=("clip", ""))
    record = SyncAnalysisRecord(
        fps=info.video.actual_fps,
        frames=info.video.n_frames,
        duration_s=info.video.duration_s,
        sync=metrics,
        offset_ms=None if metrics.offset_frames is None else metrics.offset_frames / info.video.actual_fps * 1000,
        windows=[w.__dict__ for w in result.windows],
        findings=findings,
    )
    (out_dir / "report.json").write_text(record.model_dump_json(indent=1))
    return record


def run_sync_analysis(clip: ClipRun) -> SyncAnalysisRecord:
    audio = None if clip.audio == clip.video else clip.audio
    lm = clip.layout.artifact("stabilize", "landmarks.npz")
    cfg = clip.config
    return clip.run("sync_analysis", ["drift", "audio.analysis_sample_rate"], ["stabilize"], [clip.audio], SyncAnalysisRecord, lambda out: sync_analysis(clip.video, audio, lm, out, cfg.drift, cfg.audio.analysis_sample_rate))


sync_analysis_task = stage_task(run_sync_analysis)
