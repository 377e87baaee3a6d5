"""The one manifest schema: a flat row per clip per run, plus a row per drift window.

Rows are plain dicts of scalars and lists; the Arrow schema is derived from the
ClipRow model, so pandas or DuckDB read the Parquet files with no lipdub import.
Every run writes its own files (never rewriting another run's).
"""

from __future__ import annotations

import datetime as dt
import types
import typing
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel


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
    sync_offset_frames_after: float | None = None
    sync_confidence_after: float | None = None
    sync_drift_frames_per_min_after: float | None = None
    sync_class_after: str | None = None
    sync_verdict_after: str | None = None
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


def write_rows(root: Path, table_name: str, run_id: str, rows: list[BaseModel], model: type[BaseModel]) -> Path | None:
    """Write this run's rows as <root>/<table>/<run_id>.parquet (temp name, then rename)."""
    if not rows:
        return None
    schema = arrow_schema(model)
    data = [r.model_dump() for r in rows]
    for d in data:
        for k, v in d.items():
            if isinstance(v, dict):
                d[k] = list(v.items())
    table = pa.Table.from_pylist(data, schema=schema)
    folder = Path(root) / table_name
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{run_id}.parquet"
    tmp = folder / f".{run_id}.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(final)
    return final
