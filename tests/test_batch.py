"""dub_batch: each row its own dub_clip run, failures recorded while the rest carry on,
a re-run that recomputes only what failed, and models loaded once per Ray worker."""

from __future__ import annotations

import csv
import json
import shutil

import pyarrow.parquet as pq
import pytest

from lipdub import LipdubError, media, samples
from lipdub.flows.batch import batch_outcome, dub_batch
from lipdub.infra.config import load_config
from lipdub.infra.jobs import check_outputs_distinct, read_jobs
from lipdub.infra.layout import STAGES
from lipdub.infra.manifest import BatchRow

pytestmark = pytest.mark.usefixtures("prefect_server")


def _write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory, talking_face, short_dub_wav, dub_wav):
    root = tmp_path_factory.mktemp("batch")
    faceless = samples.make_faceless_video(root / "faceless.mp4")
    jobs = _write_csv(root / "jobs.csv", [
        {"video": str(talking_face.video_path), "audio": str(short_dub_wav)},
        {"video": str(faceless), "audio": str(short_dub_wav)},
        {"video": str(talking_face.video_path), "audio": str(dub_wav), "output": str(root / "named.mp4"), "sync_mode": "silence"},
    ])
    return root, jobs


@pytest.fixture(scope="module")
def first_batch(batch_dir):
    root, jobs = batch_dir
    cfg = load_config(work_dir=root / "work", ray={"enabled": True, "workers": 2})
    state = dub_batch(str(jobs), str(root / "out"), cfg, return_state=True)
    return root, jobs, cfg, state


def test_a_failing_clip_is_recorded_and_the_others_finish(first_batch, short_dub_wav, talking_face):
    root, jobs, cfg, state = first_batch
    batch = batch_outcome(state)
    assert state.is_failed() and isinstance(batch, BatchRow)
    assert (batch.clips, batch.ok, batch.failed) == (3, 2, 1)
    assert len(batch.failures) == 1 and "row 2" in batch.failures[0] and "faceless.mp4" in batch.failures[0] and "no face" in batch.failures[0]
    dub_s = media.probe(short_dub_wav).audio.duration_s
    assert abs(media.probe(root / "out" / f"face.{short_dub_wav.stem}.mp4").video.duration_s - dub_s) <= 1 / 25
    video_s = media.probe(talking_face.video_path).video.duration_s  # row 3 asked for sync_mode silence: the video's length
    assert abs(media.probe(root / "named.mp4").video.duration_s - video_s) <= 1 / 25
    assert not list((root / "out").glob("faceless*"))
    rows = pq.read_table(cfg.manifests / "clips").to_pylist()
    assert sorted(r["status"] for r in rows) == ["failed", "ok", "ok"]
    assert {r["sync_mode"] for r in rows if r["status"] == "ok"} == {"cut_off", "silence"}
    stored = pq.read_table(cfg.manifests / "batches").to_pylist()
    assert len(stored) == 1 and stored[0]["failed"] == 1 and sorted(stored[0]["clip_run_ids"]) == sorted(r["run_id"] for r in rows if r["status"] == "ok")


def test_models_load_once_per_ray_worker_not_per_clip(first_batch):
    batch = batch_outcome(first_batch[3])
    assert batch.engine == "ray" and batch.workers == 2
    # three clips, many chunks each: every worker loaded each model once
    assert batch.model_loads == {"detector:mediapipe": 2, "landmarker:mediapipe": 2, "generator:retrieval": 2, "enhancer:classical": 2}


def test_rerun_recomputes_only_the_failed_clip(first_batch, talking_face, monkeypatch):
    root, jobs, cfg, _ = first_batch
    shutil.copyfile(talking_face.video_path, root / "faceless.mp4")  # the user fixes row 2's input
    state = dub_batch(str(jobs), str(root / "out"), cfg, return_state=True)
    batch = batch_outcome(state)
    assert state.is_completed() and (batch.ok, batch.failed, batch.reused) == (3, 0, 2)
    rows = [r for r in pq.read_table(cfg.manifests / "clips").to_pylist() if r["run_id"] in batch.clip_run_ids]
    assert sorted(len(r["stages_cached"]) for r in rows) == [0, len(STAGES), len(STAGES)]


def test_a_stage_that_crashed_is_the_first_one_computed_again(batch_dir, short_dub_wav, monkeypatch, tmp_path):
    from lipdub.tasks import blend as blend_module

    root, _ = batch_dir
    video = samples.make_talking_face(tmp_path / "crash.mp4", duration_s=2.0, seed=9).video_path
    jobs = _write_csv(tmp_path / "one.csv", [{"video": str(video), "audio": str(short_dub_wav)}])
    cfg = load_config(work_dir=tmp_path / "work", ray={"enabled": False})
    real_blend = blend_module.blend

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(blend_module, "blend", crash)
    first = batch_outcome(dub_batch(str(jobs), str(tmp_path / "out"), cfg, return_state=True))
    assert first.failed == 1 and "worker lost" in first.failures[0]
    monkeypatch.setattr(blend_module, "blend", real_blend)
    second = batch_outcome(dub_batch(str(jobs), str(tmp_path / "out"), cfg, return_state=True))
    assert second.ok == 1
    row = [r for r in pq.read_table(cfg.manifests / "clips").to_pylist() if r["run_id"] in second.clip_run_ids][0]
    assert row["stages_cached"] == list(STAGES[: STAGES.index("blend")])


def test_a_bad_job_file_fails_before_any_clip(tmp_path, talking_face, short_dub_wav):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"video": str(talking_face.video_path), "audio": str(short_dub_wav), "speed": 2}) + "\n")
    state = dub_batch(str(jobs), str(tmp_path / "out"), load_config(work_dir=tmp_path / "w", ray={"enabled": False}), return_state=True)
    outcome = batch_outcome(state)
    assert isinstance(outcome, LipdubError) and "row 1: speed" in str(outcome)
    assert not (tmp_path / "w").exists()


def test_job_files_in_every_format_read_the_same(tmp_path):
    import pyarrow as pa

    rows = [{"video": "a.mp4", "audio": "a.wav", "face": "120,80", "language": "en"}, {"video": "s3://b/c.mp4", "audio": "c.wav", "sync_mode": "loop", "output": "o.mp4"}]
    as_csv = read_jobs(_write_csv(tmp_path / "j.csv", rows))
    (tmp_path / "j.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    columns = sorted({k for r in rows for k in r})
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]), tmp_path / "j.parquet")
    assert as_csv == read_jobs(tmp_path / "j.jsonl") == read_jobs(tmp_path / "j.parquet")
    assert as_csv[0].face == (120.0, 80.0) and as_csv[1].sync_mode.value == "loop"
    base = load_config(work_dir=tmp_path / "w")
    assert as_csv[0].config(base).generate.dub_language == "en" and as_csv[1].config(base).generate.dub_language is None
    assert as_csv[0].output_under("s3://out/x") == "s3://out/x/a.a.mp4" and as_csv[1].output_under("x") == "o.mp4"
    with pytest.raises(LipdubError, match="rows 1 and 2 would both write out/a.a.mp4"):
        check_outputs_distinct(read_jobs(_write_csv(tmp_path / "d.csv", [rows[0], rows[0]])), "out", "d.csv")
    with pytest.raises(LipdubError, match=r"row 1: face"):
        read_jobs(_write_csv(tmp_path / "f.csv", [{"video": "a", "audio": "b", "face": "12"}]))
    with pytest.raises(LipdubError, match="unknown job file type"):
        read_jobs(tmp_path / "j.txt")


def test_the_ui_gets_a_batch_summary_and_each_clips_metrics_output_and_plot(first_batch):
    from lipdub.flows.artifacts import artifact_key

    root, _, cfg, state = first_batch
    batch = batch_outcome(state)
    clip_ids = [r["clip_id"] for r in pq.read_table(cfg.manifests / "clips").to_pylist() if r["run_id"] in batch.clip_run_ids]
    wanted = [artifact_key("batch", batch.run_id), artifact_key("batch", batch.run_id) + "-summary"]
    wanted += [artifact_key("clip", c) + suffix for c in clip_ids for suffix in ("", "-output", "-sync-plot")]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = {a.key: a for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=wanted)))}
    assert set(wanted) <= set(found)
    summary = found[wanted[1]].data
    assert "2 ok" in summary and "1 failed" in summary and "faceless.mp4" in summary
    table = json.loads(found[wanted[0]].data) if isinstance(found[wanted[0]].data, str) else found[wanted[0]].data
    assert sorted(r["status"] for r in table) == ["failed", "ok", "ok"]
    assert "sync.png" in found[artifact_key("clip", clip_ids[0]) + "-sync-plot"].data


def test_a_clip_whose_source_is_out_of_sync_carries_a_note(tmp_path, short_dub_wav, late_face):
    jobs = _write_csv(tmp_path / "jobs.csv", [{"video": str(late_face), "audio": str(short_dub_wav)}])
    seen: list[dict] = []
    dub_batch(str(jobs), str(tmp_path / "out"), load_config(work_dir=tmp_path / "work", ray={"enabled": False}), on_clip=seen.append)
    assert seen[0]["status"] == "ok"
    assert seen[0]["source_note"].startswith("the source's own sound reads +") and "frames off its lips (noticeable)" in seen[0]["source_note"]
