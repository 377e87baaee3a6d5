"""The one manifest schema: a flat row per clip per run, plus a row per drift window.

Rows are plain dicts of scalars and lists; the Arrow schema is derived from the
ClipRow model, so pandas or DuckDB read the Parquet files with no lipdub import.
Every run writes its own files (never rewriting another run's), so a dataset on S3,
where nothing can be appended or renamed, grows by whole-file puts.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import types
import typing
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel

from lipdub.infra import storage
from lipdub.infra.config import MANIFESTS_FOLDER, StorageConfig


class ClipRow(BaseModel):
    run_id: str
    clip_id: str
    job: str  # dub | doctor
    started_at: dt.datetime
    video: str
    audio: str
    output: str | None
    status: str  # ok | failed
    error: str | None
    failed_stage: str | None
    config_hash: str
    preset: str
    stage_seconds: dict[str, float]
    stages_cached: list[str]
    probe_flags: list[str]
    declared_fps: float | None = None
    actual_fps: float | None = None
    n_frames: int | None = None
    dub_duration_s: float | None = None
    output_duration_s: float | None = None
    video_crf: int | None = None  # the blend's CRF (lowered for grainy footage, see blend.fidelity_db)
    video_trial_psnr_db: float | None = None  # the source encoded alone at that CRF
    sync_mode: str | None = None
    dub_noise_floor_dbfs: float | None = None
    dub_peak_dbfs: float | None = None
    dub_loudness_lufs: float | None = None
    dub_longest_silence_s: float | None = None
    dub_leading_silence_s: float | None = None
    dub_trailing_silence_s: float | None = None
    dub_speech_ratio: float | None = None
    frames_with_face: int | None = None
    median_face_px: float | None = None
    max_faces_in_frame: int | None = None
    frames_usable: int | None = None
    frames_generated: int | None = None
    sync_offset_frames_before: float | None = None
    sync_confidence_before: float | None = None
    sync_drift_frames_per_min_before: float | None = None
    sync_class_before: str | None = None
    sync_verdict_before: str | None = None
    sync_reason_before: str | None = None  # why there is no reading, or why it may be a few frames off
    sync_offset_frames_after: float | None = None
    sync_confidence_after: float | None = None
    sync_drift_frames_per_min_after: float | None = None
    sync_class_after: str | None = None
    sync_verdict_after: str | None = None
    sync_reason_after: str | None = None
    detector: str | None = None
    landmarker: str | None = None
    generator: str | None = None
    generator_mapping: str | None = None
    enhancer: str | None = None
    repairs: list[str] = []
    lipdub_version: str


class DriftWindowRow(BaseModel):
    run_id: str
    clip_id: str
    which: str  # output | source
    start_s: float
    end_s: float
    offset_frames: float
    score: float


class BatchRow(BaseModel):
    """One row per batch run: what it was given and how it ended."""

    run_id: str
    job_file: str
    output_prefix: str
    started_at: dt.datetime
    seconds: float
    clips: int
    ok: int
    failed: int
    reused: int  # clips whose every stage came from the cache
    failures: list[str]  # "row N <video>: <error>"
    clip_run_ids: list[str]  # the dub_clip runs that ended well, for joining with the clips table
    engine: str  # local | ray
    workers: int
    model_loads: dict[str, int]
    lipdub_version: str


_SCALARS = {str: pa.string(), float: pa.float64(), int: pa.int64(), bool: pa.bool_(), dt.datetime: pa.timestamp("us", tz="UTC")}


def _arrow_type(annotation: typing.Any) -> pa.DataType:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _arrow_type(next(a for a in args if a is not type(None)))
    if origin is list:
        return pa.list_(_arrow_type(args[0]))
    if origin is dict:
        return pa.map_(_arrow_type(args[0]), _arrow_type(args[1]))
    return _SCALARS[annotation]


def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    return pa.schema([pa.field(name, _arrow_type(f.annotation)) for name, f in model.model_fields.items()])


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def write_rows(root: Path | str, table_name: str, run_id: str, rows: list[BaseModel], model: type[BaseModel], storage_cfg: StorageConfig | None = None) -> Path | str | None:
    """Write this run's rows as <root>/<table>/<run_id>.parquet (temp name, then rename;
    for a remote root, a local temp file put in one piece)."""
    if not rows:
        return None
    schema = arrow_schema(model)
    data = [r.model_dump() for r in rows]
    for d in data:
        for k, v in d.items():
            if isinstance(v, dict):
                d[k] = list(v.items())
    table = pa.Table.from_pylist(data, schema=schema)
    if storage.is_remote(root):
        dest = storage.join(root, table_name, f"{run_id}.parquet")
        with tempfile.TemporaryDirectory(prefix="lipdub-manifest-") as tmp:
            pq.write_table(table, Path(tmp) / "rows.parquet")
            storage.publish_file(Path(tmp) / "rows.parquet", dest, storage_cfg)
        return dest
    folder = Path(root) / table_name
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{run_id}.parquet"
    tmp = folder / f".{run_id}.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(final)
    return final


TABLES: dict[str, type[BaseModel]] = {"clips": ClipRow, "drift_windows": DriftWindowRow, "batches": BatchRow}


def read_table(root: Path | str, table_name: str, storage_cfg: StorageConfig | None = None) -> pa.Table:
    """Every run's rows of one table, from a local folder or a URL. Read against today's
    schema, so files written before a column was added read with that column empty."""
    fs, path = storage.filesystem(storage.join(root, table_name), storage_cfg)
    return pq.read_table(path, filesystem=fs, schema=arrow_schema(TABLES[table_name]))


def manifest_root(loc: Path | str, storage_cfg: StorageConfig | None = None) -> str:
    """The manifest folder `loc` names: itself, or the one inside a work directory (what
    `lipdub run --work-dir` was given). FileNotFoundError: neither."""
    for root in (str(loc), storage.join(loc, MANIFESTS_FOLDER)):
        if storage.exists(storage.join(root, "clips"), storage_cfg):
            return root
    raise FileNotFoundError(str(loc))


def out_of_tolerance(root: Path | str, since: dt.datetime, storage_cfg: StorageConfig | None = None) -> list[dict]:
    """Each clip's latest run since `since` that failed or whose sync, as last measured
    (after the dub or repair, else the source's), is worse than fine. `root`: a manifest
    folder or the work directory holding one."""
    rows = read_table(manifest_root(root, storage_cfg), "clips", storage_cfg).filter(pc.field("started_at") >= pa.scalar(since, pa.timestamp("us", tz="UTC"))).to_pylist()
    latest: dict[tuple[str, str], dict] = {}
    for row in sorted(rows, key=lambda r: r["started_at"]):
        latest[(row["clip_id"], row["job"])] = row
    return [r for r in latest.values() if r["status"] != "ok" or (r["sync_verdict_after"] or r["sync_verdict_before"]) not in ("fine", None)]
