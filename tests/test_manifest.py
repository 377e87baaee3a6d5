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


def _at(run_id: str, clip: str, days_ago: float, verdict: str | None, status: str = "ok", job: str = "dub") -> ClipRow:
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)
    return _row(run_id, status).model_copy(update={"clip_id": clip, "started_at": when, "sync_verdict_after": verdict, "job": job})


def _week(tmp_path):
    rows = [
        _at("r1", "old-bad", 10, "unacceptable"),  # last month: not this week
        _at("r2", "fixed", 3, "noticeable"),  # bad, then fine in a later run
        _at("r3", "fixed", 1, "fine"),
        _at("r4", "drifting", 2, "unacceptable"),
        _at("r5", "broken", 1, None, status="failed"),
        _at("r6", "fine", 1, "fine"),
    ]
    for r in rows:
        write_rows(tmp_path, "clips", r.run_id, [r], ClipRow)


def test_out_of_tolerance_this_week_is_each_clips_latest_bad_or_failed_run(tmp_path):
    from lipdub.infra.manifest import out_of_tolerance

    _week(tmp_path)
    week_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=7)
    assert sorted(r["clip_id"] for r in out_of_tolerance(tmp_path, week_ago)) == ["broken", "drifting"]


def test_the_documented_duckdb_query_answers_the_same_without_lipdub(tmp_path):
    import duckdb

    _week(tmp_path)
    # the README's query, on this folder
    found = duckdb.sql(f"""
        select clip_id from (
            select *, row_number() over (partition by clip_id, job order by started_at desc) as nth
            from read_parquet('{tmp_path}/clips/*.parquet', union_by_name = true)
            where started_at >= now() - interval 7 day)
        where nth = 1 and (status <> 'ok' or coalesce(sync_verdict_after, sync_verdict_before) <> 'fine')
        order by clip_id""").fetchall()
    assert [c for (c,) in found] == ["broken", "drifting"]


def test_concurrent_runs_each_add_their_own_file(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    ids = [f"run-{i}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: write_rows(tmp_path, "clips", i, [_row(i)], ClipRow), ids))
    assert sorted(pq.read_table(tmp_path / "clips").column("run_id").to_pylist()) == sorted(ids)


def test_files_written_before_a_column_existed_still_read(tmp_path):
    from lipdub.infra.manifest import read_table

    write_rows(tmp_path, "clips", "new", [_row("new")], ClipRow)
    old = pq.read_table(tmp_path / "clips" / "new.parquet").drop_columns(["repairs", "generator_mapping"])
    pq.write_table(old, tmp_path / "clips" / "old.parquet")
    table = read_table(tmp_path, "clips")
    assert table.num_rows == 2 and "repairs" in table.column_names


def test_report_names_each_clip_by_its_files(tmp_path):
    from typer.testing import CliRunner

    from lipdub.cli import app

    _week(tmp_path)
    deep = _at("r7", "deep", 1, "noticeable").model_copy(update={"video": "/very/long/path/to/the/footage/anchor-man.mp4", "audio": "s3://bucket/dubs/en-male-5s.wav"})
    write_rows(tmp_path, "clips", "r7", [deep], ClipRow)
    result = CliRunner().invoke(app, ["report", str(tmp_path)], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert "anchor-man.mp4 + en-male-5s.wav" in result.stdout
    assert "3 clip(s) out of tolerance or failed" in result.stdout
    assert "(weak)" not in result.stdout  # every reading here is clear


def test_report_finds_the_manifests_of_a_work_directory(tmp_path):
    """`lipdub run --work-dir W` writes its manifests to W/manifests; `lipdub report W`
    reads them there, and a folder with neither says so and exits non-zero."""
    from typer.testing import CliRunner

    from lipdub.cli import app

    late = _at("r10", "late", 1, "noticeable").model_copy(update={"video": "map-man.mp4"})
    write_rows(tmp_path / "work" / "manifests", "clips", late.run_id, [late], ClipRow)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "work")], env={"COLUMNS": "120"})
    assert result.exit_code == 0 and "map-man.mp4" in result.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["report", str(empty)])
    assert result.exit_code != 0 and "no manifests there" in result.output


def test_report_marks_a_reading_on_weak_evidence(tmp_path):
    from typer.testing import CliRunner

    from lipdub.cli import app

    weak = _at("r8", "flag", 1, "unacceptable").model_copy(update={"video": "flag-woman.mp4", "sync_offset_frames_after": -7.4, "sync_reason_after": "weak evidence (the sound predicts the lips at 0.19 < 0.25)"})
    clear = _at("r9", "anchor", 1, "noticeable").model_copy(update={"video": "anchor-man.mp4", "sync_offset_frames_after": 3.2})
    for r in (weak, clear):
        write_rows(tmp_path, "clips", r.run_id, [r], ClipRow)
    result = CliRunner().invoke(app, ["report", str(tmp_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "unacceptable (weak)" in next(line for line in lines if "flag-woman.mp4" in line)
    assert "(weak)" not in next(line for line in lines if "anchor-man.mp4" in line)
    assert "check it by eye" in result.stdout


def test_a_weak_sync_reading_is_recorded_and_not_stated_as_fact(tmp_path):
    """A reading the sound barely supports (flag-woman's own soundtrack reads -7.4 frames at a
    held-out score of 0.19) lands in the row with its reason. About the source it raises no
    note; the same reading of the dub says to check it by eye. A clear reading is said plainly."""
    from lipdub.flows.summary import output_sync, source_off_note
    from lipdub.sync import SyncResult, weak_reason
    from lipdub.tasks.drift import SyncMetrics

    weak = SyncMetrics.of(SyncResult(-7.4, 0.19, float("nan"), "constant_offset", "unacceptable", weak_reason(0.19), []))
    clear = SyncMetrics.of(SyncResult(3.2, 0.35, float("nan"), "constant_offset", "noticeable", weak_reason(0.36), []))
    rows = [_row("run-w").model_copy(update=weak.columns("before") | clear.columns("after")), _row("run-w").model_copy(update=clear.columns("before") | weak.columns("after"))]
    write_rows(tmp_path, "clips", "run-w", rows, ClipRow)
    a, b = pq.read_table(tmp_path / "clips").to_pylist()
    assert a["sync_reason_before"].startswith("weak evidence") and a["sync_reason_after"] is None
    assert a["sync_verdict_before"] == "unacceptable" and a["sync_offset_frames_after"] == 3.2
    assert source_off_note(a["sync_offset_frames_before"], a["sync_verdict_before"], a["sync_reason_before"]) == ""
    assert output_sync(a["sync_offset_frames_after"], a["sync_verdict_after"], 100, a["sync_reason_after"]) == "+3.2 frames (noticeable)"
    assert source_off_note(b["sync_offset_frames_before"], b["sync_verdict_before"], b["sync_reason_before"]) == "the source's own sound reads +3.2 frames off its lips (noticeable)"
    assert output_sync(b["sync_offset_frames_after"], b["sync_verdict_after"], 100, b["sync_reason_after"]) == "-7.4 frames (unacceptable; weak evidence: check it by eye)"
