"""dub_clip: the per-clip DAG, probe -> audio_clean -> ... -> drift, one Prefect task per stage."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from lipdub.flows import named_after_video
from lipdub.flows.artifacts import clip_artifacts
from lipdub.flows.summary import clip_row, drift_rows
from lipdub.infra.clip_run import ClipRun, StageEvent
from lipdub.infra.config import Config, load_config
from lipdub.infra.manifest import ClipRow
from lipdub.tasks.audio_clean import audio_clean_task
from lipdub.tasks.blend import blend_task
from lipdub.tasks.drift import drift_task
from lipdub.tasks.enhance import enhance_task
from lipdub.tasks.face_detect import face_detect_task
from lipdub.tasks.generate import generate_task
from lipdub.tasks.probe import probe_task
from lipdub.tasks.remux import remux_task
from lipdub.tasks.stabilize import stabilize_task


@flow(name="dub_clip", flow_run_name=named_after_video("dub"), log_prints=True)
def dub_clip(video: str | Path, audio: str | Path, output: str | Path, config: Config | None = None, on_event: StageEvent | None = None) -> ClipRow:
    """Dub one clip (paths or URLs); on failure the manifest still gets a row saying where and why."""
    clip = ClipRun.start(video, audio, output, config or load_config(), on_event)
    with clip.recorded(lambda: clip_row(clip), lambda: drift_rows(clip)):
        probe_task(clip)
        audio_clean_task(clip)
        face_detect_task(clip)
        stabilize_task(clip)
        generate_task(clip)
        enhance_task(clip)
        blend_task(clip)
        remux_task(clip)
        drift_task(clip)
        clip.publish(clip.layout.artifact("remux", "output.mp4"))
    clip_artifacts(clip.row, clip.layout.durable_artifact("drift", "sync.png"))
    return clip.row
