"""Manifests are plain Parquet: readable without lipdub, one file per run."""

import datetime as dt

import pyarrow.parquet as pq

from lipdub.infra.manifest import ClipRow, arrow_schema, write_rows


def _row(run_id: str, status: str = "ok") -> ClipRow:
    return ClipRow(run_id=run_id, clip_id="c-1", job="dub", started_at=dt.datetime.now(dt.timezone.utc), video="v.mp4", audio="a.wav", output="o.mp4", status=status, error=None, failed_stage=None, config_hash="h", preset="default", stage_seconds={"probe": 0.1}, stages_cached=["probe"], probe_flags=["vfr"], sync_offset_frames_after=0.5, lipdub_version="0")


def test_schema_is_derived_from_the_row_model():
    schema = arrow_schema(ClipRow)
    assert schema.names == list(ClipRow.model_fields)
    assert str(schema.field("stage_seconds").type) == "map<string, double>"


def test_each_run_writes_its_own_file_and_the_dataset_reads_back(tmp_path):
    write_rows(tmp_path, "clips", "run-a", [_row("run-a")], ClipRow)
    write_rows(tmp_path, "clips", "run-b", [_row("run-b", "failed")], ClipRow)
    files = sorted(p.name for p in (tmp_path / "clips").iterdir())
    assert files == ["run-a.parquet", "run-b.parquet"]
    table = pq.read_table(tmp_path / "clips")
    assert sorted(table.column("status").to_pylist()) == ["failed", "ok"]
    assert table.column("probe_flags").to_pylist()[0] == ["vfr"]
