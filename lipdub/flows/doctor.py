"""doctor: measure a clip's lip sync, name the causes, and (with an output) repair it.

doctor_clip reads like its DAG: probe -> face_detect -> stabilize -> sync_analysis
[-> repair]. `doctor` runs it over a list of clips; one bad clip never stops the rest.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from prefect import flow

from lipdub.flows import named_after_video
from lipdub.infra import storage
from lipdub.infra.clip_run import ClipRun, StageEvent
from lipdub.infra.config import Config, load_config
from lipdub.infra.manifest import DriftWindowRow
from lipdub.tasks.face_detect import face_detect_task
from lipdub.tasks.probe import probe_task
from lipdub.tasks.repair import RepairRecord, repair_task
from lipdub.tasks.stabilize import stabilize_task
from lipdub.tasks.sync_analysis import SyncAnalysisRecord, sync_analysis_task


@flow(name="doctor_clip", flow_run_name=named_after_video("doctor"))
def doctor_clip(video: str | Path, audio: str | Path | None = None, output: str | Path | None = None, config: Config | None = None, on_event: StageEvent | None = None) -> ClipRun:
    clip = ClipRun.start(video, audio or video, output, config or load_config(), on_event, job="doctor")
    with clip.recorded(lambda: doctor_row(clip), lambda: window_rows(clip)):
        probe_task(clip)
        face_detect_task(clip)
        stabilize_task(clip)
        sync_analysis_task(clip)
        if output is not None:
            repair_task(clip)
            clip.publish(clip.layout.artifact("repair", "fixed.mp4"))
    return clip


@flow(name="doctor")
def doctor(videos: list[str | Path], output_dir: str | Path | None = None, config: Config | None = None) -> list[dict]:
    """Diagnose (and, given output_dir, repair) each clip; returns one summary per clip."""
    cfg = config or load_config()
    summaries = []
    for video in videos:
        out = storage.join(output_dir, f"{PurePosixPath(str(video)).stem}.fixed.mp4") if output_dir else None
        try:
            clip = doctor_clip(video, None, out, cfg)
            summaries.append({"video": str(video), "status": "ok", **doctor_row(clip)})
        except Exception as exc:  # noqa: BLE001 - recorded, the batch goes on
            summaries.append({"video": str(video), "status": "failed", "error": str(exc)})
    return summaries


def doctor_row(clip: ClipRun) -> dict:
    row: dict = {"probe_flags": []}
    if a := clip.records.get("sync_analysis"):
        assert isinstance(a, SyncAnalysisRecord)
        row |= dict(probe_flags=[f.name for f in a.findings], actual_fps=a.fps, n_frames=a.frames) | a.sync.columns("before")
    if r := clip.records.get("repair"):
        assert isinstance(r, RepairRecord)
        row |= dict(repairs=r.steps) | r.after.columns("after")
    if p := clip.records.get("probe"):
        row |= dict(declared_fps=p.declared_fps)
    return row


def window_rows(clip: ClipRun) -> list[DriftWindowRow]:
    rows = []
    if a := clip.records.get("sync_analysis"):
        rows += [DriftWindowRow(run_id=clip.run_id, clip_id=clip.layout.clip_id, which="source", **w) for w in a.windows]
    if r := clip.records.get("repair"):
        rows += [DriftWindowRow(run_id=clip.run_id, clip_id=clip.layout.clip_id, which="output", **w) for w in r.windows_after]
    return rows
