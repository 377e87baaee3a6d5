"""dub_batch: every row of a job file as its own dub_clip run; one failure never stops the rest.

Re-running a batch (or retrying its run in the UI) reuses every finished stage of
every clip from the stage cache, so only what failed is computed again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow
from prefect.states import Failed

from lipdub import __version__, error_text
from lipdub.flows.artifacts import batch_artifact
from lipdub.flows.dub_clip import dub_clip
from lipdub.flows.summary import output_sync, source_off_note
from lipdub.infra import storage
from lipdub.infra.config import Config, load_config
from lipdub.infra.engine import RayEngine, engine_for, warm
from lipdub.infra.jobs import check_outputs_distinct, read_jobs
from lipdub.infra.layout import STAGES
from lipdub.infra.manifest import BatchRow, new_run_id, write_rows


def batch_config(config: Config | str | None) -> Config:
    """Batches run their models on Ray unless the config says otherwise. A deployment
    passes its config as the path of a YAML file."""
    cfg = config if isinstance(config, Config) else load_config(config)
    if cfg.ray.enabled is None:
        cfg = cfg.model_copy(update={"ray": cfg.ray.model_copy(update={"enabled": True})})
    return cfg


@flow(name="dub_batch", flow_run_name="batch {jobs}", log_prints=True)
def dub_batch(jobs: str, output_prefix: str, config: Config | str | None = None, on_clip: Callable[[dict], None] | None = None) -> BatchRow:
    """Dub every clip listed in `jobs` (CSV, JSON lines or Parquet; local or s3://)."""
    cfg = batch_config(config)
    run_id, started_at, started = new_run_id(), dt.datetime.now(dt.timezone.utc), time.perf_counter()
    storage.check_input(jobs, cfg.storage)
    local = storage.localize(jobs, storage.scratch_dir(cfg) / "jobs", cfg.storage)
    rows = read_jobs(local, source=str(jobs))
    check_outputs_distinct(rows, str(output_prefix), str(jobs))
    if not storage.is_remote(output_prefix):
        Path(output_prefix).mkdir(parents=True, exist_ok=True)  # a prefix is ours to create; a named output's folder is not
    engine = engine_for(cfg.ray)
    warm(engine, cfg)  # every worker loads every model once, before the first clip
    clips, failures, run_ids, reused = [], [], [], 0
    for n, job in enumerate(rows, start=1):
        output = job.output_under(str(output_prefix))
        entry = {"row": n, "video": job.video, "audio": job.audio, "status": "ok", "output": output, "sync_after": "", "source_note": "", "error": ""}
        try:
            row = dub_clip(job.video, job.audio, output, job.config(cfg))
        except Exception as exc:  # noqa: BLE001 - recorded; the batch goes on
            error = error_text(exc)
            failures.append(f"row {n} {job.video}: {error}")
            entry |= {"status": "failed", "output": "", "error": error}
        else:
            run_ids.append(row.run_id)
            reused += set(row.stages_cached) >= set(STAGES)
            entry["sync_after"] = output_sync(row.sync_offset_frames_after, row.sync_verdict_after, row.frames_generated, row.sync_reason_after)
            entry["source_note"] = source_off_note(row.sync_offset_frames_before, row.sync_verdict_before, row.sync_reason_before)
        clips.append(entry)
        print(f"[{n}/{len(rows)}] {entry['status']} {job.video}: {entry['error'] or entry['output'] + ', sync ' + entry['sync_after']}")
        if on_clip:
            on_clip(entry)
    batch = BatchRow(
        run_id=run_id, job_file=str(jobs), output_prefix=str(output_prefix), started_at=started_at, seconds=time.perf_counter() - started,
        clips=len(rows), ok=len(rows) - len(failures), failed=len(failures), reused=reused, failures=failures, clip_run_ids=run_ids,
        engine="ray" if isinstance(engine, RayEngine) else "local", workers=engine.workers, model_loads=engine.loads(), lipdub_version=__version__,
    )
    write_rows(cfg.manifests, "batches", run_id, [batch], BatchRow, cfg.storage)
    batch_artifact(batch, clips)
    if failures:
        return Failed(message=f"{batch.failed} of {batch.clips} clips failed: " + "; ".join(failures)[:1000], data=batch)  # type: ignore[return-value]
    return batch


def batch_outcome(state) -> BatchRow:  # noqa: ANN001 - a Prefect State
    """The BatchRow of a finished dub_batch run, whether it completed or failed."""
    return state.result(raise_on_failure=False)

