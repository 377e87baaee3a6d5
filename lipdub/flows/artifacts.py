"""What a run shows in the Prefect UI: a metrics table, the output link, the sync plot."""

from __future__ import annotations

import re
from pathlib import Path

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from lipdub.infra.manifest import BatchRow, ClipRow

CLIP_METRICS = (
    "status", "output", "output_duration_s", "actual_fps", "sync_offset_frames_after", "sync_verdict_after", "sync_class_after",
    "sync_offset_frames_before", "sync_verdict_before", "frames_generated", "frames_usable", "dub_loudness_lufs", "dub_speech_ratio",
    "probe_flags", "stages_cached", "generator", "enhancer",
)


def artifact_key(*parts: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", "-".join(parts).lower())).strip("-")[:100]


def link_for(location: str) -> str:
    return location if "://" in location else Path(location).resolve().as_uri()


def clip_artifacts(row: ClipRow, plot: str | None) -> None:
    """Per clip: metrics table, a link to the output, a link to the sync plot."""
    key = artifact_key("clip", row.clip_id)
    data = row.model_dump(mode="json")
    table = [{"metric": name, "value": "" if data[name] is None else str(data[name])} for name in CLIP_METRICS]
    create_table_artifact(key=key, table=table, description=f"{row.video} dubbed with {row.audio}")
    if row.output:
        create_link_artifact(key=f"{key}-output", link=link_for(row.output), link_text=Path(row.output).name, description="dubbed video")
    if plot:
        create_link_artifact(key=f"{key}-sync-plot", link=link_for(plot), link_text="offset over time (PNG)", description="sync of the dub and of the source")


def batch_artifact(batch: BatchRow, clips: list[dict]) -> None:
    key = artifact_key("batch", batch.run_id)
    create_table_artifact(key=key, table=clips, description=f"{batch.job_file}: {batch.ok} ok, {batch.failed} failed of {batch.clips}")
    lines = [
        f"# Batch {batch.job_file}",
        f"{batch.clips} clips: **{batch.ok} ok**, **{batch.failed} failed**, {batch.reused} reused whole; {batch.seconds:.0f} s on {batch.engine} ({batch.workers} workers).",
        "",
    ]
    lines += [f"- {f}" for f in batch.failures] or ["No failures."]
    create_markdown_artifact(key=f"{key}-summary", markdown="\n".join(lines), description="batch summary")
