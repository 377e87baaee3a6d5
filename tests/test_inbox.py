"""The scheduled inbox: each job file dubbed once, filed under done/ or failed/; and the
deployment file points at flows and parameters that exist."""

from __future__ import annotations

import csv
import inspect
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from lipdub import media, samples
from lipdub.flows.inbox import dub_inbox
from lipdub.infra.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _jobs(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "audio"])
        w.writerows(rows)
    return path


@pytest.mark.usefixtures("prefect_server")
def test_each_job_file_is_dubbed_once_and_filed(tmp_path, talking_face, short_dub_wav):
    inbox, outputs = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    cfg = load_config(work_dir=tmp_path / "work", ray={"enabled": False})
    faceless = samples.make_faceless_video(tmp_path / "faceless.mp4")
    good = _jobs(inbox / "tonight.csv", [(str(talking_face.video_path), str(short_dub_wav))])
    content = good.read_bytes()
    _jobs(inbox / "broken.csv", [(str(faceless), str(short_dub_wav))])
    (inbox / "notes.txt").write_text("not a job file")

    taken = dub_inbox(str(inbox), str(outputs), cfg)
    assert sorted((t["job_file"], t["status"]) for t in taken) == [("broken.csv", "failed"), ("tonight.csv", "done")]
    assert (inbox / "done" / "tonight.csv").read_bytes() == content
    assert (inbox / "failed" / "broken.csv").is_file()
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["notes.txt"]
    assert (outputs / "tonight" / f"face.{short_dub_wav.stem}.mp4").is_file()
    dubbed = len(pq.read_table(cfg.manifests / "clips").to_pylist())

    (inbox / "tonight-again.csv").write_bytes(content)  # re-delivered under another name
    taken = dub_inbox(str(inbox), str(outputs), cfg)
    assert taken == [{"job_file": "tonight-again.csv", "status": "duplicate", "of": "tonight.csv"}]
    assert (inbox / "done" / "tonight-again.csv").is_file()
    assert len(pq.read_table(cfg.manifests / "clips").to_pylist()) == dubbed  # nothing dubbed again

    (inbox / "tonight.csv").write_bytes(content)  # and under the same name: kept beside the first
    dub_inbox(str(inbox), str(outputs), cfg)
    assert (inbox / "done" / "tonight.1.csv").read_bytes() == content
    assert dub_inbox(str(inbox), str(outputs), cfg) == []


def test_deployments_name_real_flows_and_their_parameters():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = {d["name"] for d in spec["deployments"]}
    assert "dub-batch" in names
    for deployment in spec["deployments"]:
        module_path, flow_name = deployment["entrypoint"].split(":")
        module = __import__(module_path.removesuffix(".py").replace("/", "."), fromlist=[flow_name])
        flow = getattr(module, flow_name)
        params = inspect.signature(flow.fn).parameters
        assert set(deployment.get("parameters", {})) <= set(params), deployment["name"]
        for schedule in deployment.get("schedules", []):
            from prefect.client.schemas.schedules import CronSchedule

            CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))


@pytest.mark.usefixtures("prefect_server")
def test_an_s3_inbox_end_to_end_on_ray(s3_bucket, tmp_path, talking_face, short_dub_wav):
    """Job file, inputs, outputs, work dir and manifests all in the bucket; models on Ray actors."""
    import os

    import s3fs

    s3 = s3fs.S3FileSystem(endpoint_url=os.environ["AWS_ENDPOINT_URL"], skip_instance_cache=True)
    root = f"{s3_bucket}/nightly"
    s3.put_file(str(talking_face.video_path), f"{root}/in/face.mp4")
    s3.put_file(str(short_dub_wav), f"{root}/in/short.wav")
    jobs = _jobs(tmp_path / "jobs.csv", [(f"{root}/in/face.mp4", f"{root}/in/short.wav")])
    s3.put_file(str(jobs), f"{root}/inbox/monday.csv")
    cfg = load_config(work_dir=f"{root}/work", manifest_dir=f"{root}/manifests", storage={"scratch_dir": str(tmp_path / "scratch")}, ray={"enabled": True, "workers": 2})

    taken = dub_inbox(f"{root}/inbox", f"{root}/out", cfg)
    assert taken == [{"job_file": "monday.csv", "status": "done"}]
    s3.invalidate_cache()
    assert s3.exists(f"{root}/inbox/done/monday.csv") and not s3.exists(f"{root}/inbox/monday.csv")
    s3.get_file(f"{root}/out/monday/face.short.mp4", str(tmp_path / "out.mp4"))
    assert media.probe(tmp_path / "out.mp4").audio is not None
    clips = pq.read_table(f"{root}/manifests/clips".removeprefix("s3://"), filesystem=s3).to_pylist()
    assert [(c["status"], c["video"], c["output"]) for c in clips] == [("ok", f"{root}/in/face.mp4", f"{root}/out/monday/face.short.mp4")]
    batch = pq.read_table(f"{root}/manifests/batches".removeprefix("s3://"), filesystem=s3).to_pylist()[0]
    assert batch["engine"] == "ray" and batch["ok"] == 1
    assert set(s3.ls(f"{root}/work")) >= {f"{root.removeprefix('s3://')}/work/{clips[0]['clip_id']}"}
