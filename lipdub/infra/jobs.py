"""A batch's job file: one row per clip, as CSV, JSON lines or Parquet.

Columns: video, audio (required); output, sync_mode, face ("x,y"), language optional. Unknown
columns are errors rather than silently ignored options. Every row is checked
before any clip runs, so a typo in row 90 does not surface after 89 dubs.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from lipdub import LipdubError
from lipdub.infra import storage
from lipdub.infra.config import Config, SyncMode, first_error

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def parse_point(text: str) -> tuple[float, float]:
    """A face chosen as 'x,y' (pixels), on the command line or in a job file."""
    try:
        x, y = (float(p) for p in text.replace(" ", "").split(","))
    except ValueError:
        raise ValueError("face must be 'x,y' in pixels") from None
    return x, y


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    video: str
    audio: str
    output: str | None = None
    sync_mode: SyncMode | None = None
    face: tuple[float, float] | None = None
    language: str | None = None

    @field_validator("face", mode="before")
    @classmethod
    def _point(cls, value: object) -> object:
        return parse_point(value) if isinstance(value, str) else value

    def config(self, base: Config) -> Config:
        """The batch's config with this row's options applied."""
        return base.for_clip(self.sync_mode, self.face, self.language)

    def output_under(self, prefix: str) -> str:
        """This row's output, or <prefix>/<video stem>.<audio stem>.mp4."""
        if self.output:
            return self.output
        return storage.join(prefix, f"{PurePosixPath(self.video).stem}.{PurePosixPath(self.audio).stem}.mp4")


def _rows(path: Path, source: str) -> list[dict]:
    kind = FORMATS.get(path.suffix.lower())
    try:
        if kind == "csv":
            table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types={}, strings_can_be_null=True, auto_dict_encode=False))
            return [{k: v for k, v in r.items() if v not in (None, "")} for r in table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names])).to_pylist()]
        if kind == "parquet":
            return [{k: v for k, v in r.items() if v is not None} for r in pq.read_table(path).to_pylist()]
        if kind == "jsonl":
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            return [json.loads(ln) for ln in lines]
    except (pa.ArrowInvalid, json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise LipdubError(source, f"cannot read job file ({str(exc).splitlines()[0]})") from exc
    raise LipdubError(source, f"unknown job file type {path.suffix!r} (use {', '.join(sorted(FORMATS))})")


def read_jobs(path: Path, source: str | None = None) -> list[Job]:
    """Parse and check every row; `source` is the name the user gave (for messages)."""
    source = source or str(path)
    rows = _rows(Path(path), source)
    if not rows:
        raise LipdubError(source, "job file has no rows")
    jobs = []
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise LipdubError(source, f"row {n}: not an object")
        try:
            jobs.append(Job.model_validate(row))
        except ValidationError as exc:
            raise LipdubError(source, f"row {n}: {first_error(exc)}") from exc
    return jobs


def check_outputs_distinct(jobs: list[Job], prefix: str, source: str) -> None:
    seen: dict[str, int] = {}
    for n, job in enumerate(jobs, start=1):
        out = job.output_under(prefix)
        if out in seen:
            raise LipdubError(source, f"rows {seen[out]} and {n} would both write {out}")
        seen[out] = n
