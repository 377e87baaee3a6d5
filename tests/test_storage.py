"""Every path may be s3://: inputs, output, work dir and manifests, against a local S3 server."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow.parquet as pq
import pytest
import s3fs
from pydantic import BaseModel

from lipdub import LipdubError, media
from lipdub.infra import storage
from lipdub.infra.clip_run import check_inputs
from lipdub.infra.config import load_config
from lipdub.infra.layout import STAGES, ClipLayout
from lipdub.infra.manifest import ClipRow, read_table, write_rows
from lipdub.infra.stage_cache import run_stage, through_video_memo


@pytest.fixture(scope="module")
def s3(s3_bucket) -> s3fs.S3FileSystem:
    """Our own view of the bucket, to put inputs and look at results."""
    return s3fs.S3FileSystem(endpoint_url=os.environ["AWS_ENDPOINT_URL"], skip_instance_cache=True)


@pytest.fixture(scope="module")
def s3_inputs(s3, s3_bucket, talking_face, short_dub_wav) -> tuple[str, str]:
    video, audio = f"{s3_bucket}/in/face.mp4", f"{s3_bucket}/in/short.wav"
    s3.put_file(str(talking_face.video_path), video)
    s3.put_file(str(short_dub_wav), audio)
    return video, audio


def _s3_config(s3_bucket, scratch):
    return load_config(work_dir=f"{s3_bucket}/work", storage={"scratch_dir": str(scratch)})


@pytest.fixture(scope="module")
def s3_run(prefect_server, s3_inputs, s3_bucket, tmp_path_factory):
    from lipdub.flows.dub_clip import dub_clip

    video, audio = s3_inputs
    output = f"{s3_bucket}/out/face.dubbed.mp4"
    cfg = _s3_config(s3_bucket, tmp_path_factory.mktemp("scratch-a"))
    return cfg, output, dub_clip(video, audio, output, cfg)


def test_dub_clip_reads_and_writes_s3_only(s3_run, s3, s3_inputs, short_dub_wav, tmp_path):
    cfg, output, row = s3_run
    local = tmp_path / "out.mp4"
    s3.get_file(output, str(local))
    info = media.probe(local)
    assert abs(info.video.duration_s - media.probe(short_dub_wav).audio.duration_s) <= 1 / 25 and info.audio is not None
    assert row.status == "ok" and row.output == output
    assert cfg.manifests == f"{cfg.work_dir}/manifests"
    rows = pq.read_table(f"{cfg.manifests}/clips".removeprefix("s3://"), filesystem=s3).to_pylist()  # pyarrow + s3fs, no lipdub
    mine = [r for r in rows if r["run_id"] == row.run_id]
    assert len(mine) == 1 and mine[0]["status"] == "ok"
    assert (mine[0]["video"], mine[0]["audio"], mine[0]["output"]) == (*s3_inputs, output)
    assert s3.exists(f"{cfg.work_dir}/{row.clip_id}/remux/output.mp4")


def test_a_fresh_machine_reuses_every_stage_from_the_remote_work_dir(s3_run, s3, s3_inputs, s3_bucket, tmp_path):
    from lipdub.flows.dub_clip import dub_clip

    _, output, first = s3_run
    s3.rm(output)
    cfg = _s3_config(s3_bucket, tmp_path / "empty-scratch")
    row = dub_clip(*s3_inputs, output, cfg)
    assert row.stages_cached == list(STAGES) and row.clip_id == first.clip_id
    assert s3.exists(output)


@pytest.mark.usefixtures("prefect_server")
def test_a_missing_s3_input_is_named(s3_inputs, s3_bucket, tmp_path):
    from lipdub.flows.dub_clip import dub_clip

    missing = f"{s3_bucket}/in/nobody.mp4"
    with pytest.raises(LipdubError, match=f"^{missing}: file not found$"):
        dub_clip(missing, s3_inputs[1], f"{s3_bucket}/out/x.mp4", _s3_config(s3_bucket, tmp_path))


def test_an_output_in_a_missing_bucket_is_named_and_nothing_is_written(s3, s3_inputs):
    output = "s3://no-such-bucket-lipdub/out.mp4"
    with pytest.raises(LipdubError, match=f"^{output}: bucket no-such-bucket-lipdub does not exist$"):
        check_inputs(*s3_inputs, output)
    assert not s3.exists("no-such-bucket-lipdub")


def test_the_output_may_not_be_an_input(s3_inputs):
    with pytest.raises(LipdubError, match="would overwrite an input"):
        check_inputs(*s3_inputs, s3_inputs[0])


def test_localize_downloads_once_and_again_when_the_object_changes(s3, s3_bucket, tmp_path):
    url = f"{s3_bucket}/cache/a.bin"
    s3.pipe_file(url, b"first")
    first = storage.localize(url, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert first.read_bytes() == b"first" and first.name == "a.bin"
    assert storage.localize(url, tmp_path) == first and first.stat().st_mtime_ns == stamp
    s3.pipe_file(url, b"second")
    changed = storage.localize(url, tmp_path)
    assert changed != first and changed.read_bytes() == b"second"
    assert storage.localize(tmp_path / "local.mp4", tmp_path / "unused") == tmp_path / "local.mp4"
    with pytest.raises(LipdubError, match=f"^{s3_bucket}/cache/none.bin: file not found$"):
        storage.localize(f"{s3_bucket}/cache/none.bin", tmp_path)


def test_publish_file_puts_the_whole_file_or_nothing(s3, s3_bucket, tmp_path):
    src = tmp_path / "result.mp4"
    src.write_bytes(b"x" * 1000)
    storage.publish_file(src, f"{s3_bucket}/pub/result.mp4")
    assert s3.cat_file(f"{s3_bucket}/pub/result.mp4") == src.read_bytes()
    with pytest.raises(LipdubError, match="^s3://no-such-bucket-lipdub/r.mp4: cannot write output"):
        storage.publish_file(src, "s3://no-such-bucket-lipdub/r.mp4")
    storage.publish_file(src, tmp_path / "copy.mp4")
    assert (tmp_path / "copy.mp4").read_bytes() == src.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.mp4", "result.mp4"]  # no temp file left


class _Rec(BaseModel):
    value: int


def _segments(calls: list):
    def produce(out):
        calls.append(out)
        (out / "segments").mkdir()
        (out / "segments" / "000.mp4").write_bytes(b"seg")
        return _Rec(value=len(calls))

    return produce


def test_stage_cache_mirrors_each_stage_and_restores_it_on_an_empty_scratch(s3, s3_bucket, tmp_path):
    remote = f"{s3_bucket}/stage-cache"
    calls: list = []
    first = run_stage(ClipLayout(tmp_path / "a", "clip", remote), "blend", "cfg", ["in"], _Rec, _segments(calls))
    assert sorted(s3.find(f"{remote}/clip/blend")) == [f"{remote[5:]}/clip/blend/record.json", f"{remote[5:]}/clip/blend/segments/000.mp4"]
    fresh = ClipLayout(tmp_path / "b", "clip", remote)
    again = run_stage(fresh, "blend", "cfg", ["in"], _Rec, _segments(calls))
    assert len(calls) == 1 and again.cached and again.fingerprint == first.fingerprint
    assert fresh.artifact("blend", "segments").joinpath("000.mp4").read_bytes() == b"seg"
    s3.rm(f"{remote}/clip", recursive=True)  # the remote copy lost: a local hit puts it back
    assert run_stage(fresh, "blend", "cfg", ["in"], _Rec, _segments(calls)).cached
    assert s3.exists(f"{remote}/clip/blend/record.json")


def test_a_video_memo_is_mirrored_and_found_from_another_scratch(s3, s3_bucket, tmp_path):
    # two machines dub one video into two languages under one remote work dir: the second
    # takes the first's faces from the remote memo instead of finding them again
    remote = f"{s3_bucket}/memo-test/sources/v/face_detect-k"
    calls: list = []
    made = through_video_memo(tmp_path / "a" / "memo", _Rec, _segments(calls), remote)
    with storage.whole_dir(tmp_path / "a" / "clip1") as out:
        first = made(out)
    assert s3.exists(f"{remote}/memo.json") and s3.exists(f"{remote}/segments/000.mp4")
    taken = through_video_memo(tmp_path / "b" / "memo", _Rec, _segments(calls), remote)
    with storage.whole_dir(tmp_path / "b" / "clip2") as out:
        second = taken(out)
    assert len(calls) == 1 and second == first
    assert (tmp_path / "b" / "clip2" / "segments" / "000.mp4").read_bytes() == b"seg"
    s3.rm(remote, recursive=True)  # the remote copy lost: a local hit puts it back
    with storage.whole_dir(tmp_path / "b" / "clip3") as out:
        taken(out)
    assert len(calls) == 1 and s3.exists(f"{remote}/memo.json")


def _row(run_id: str, status: str) -> ClipRow:
    return ClipRow(run_id=run_id, clip_id="c-1", job="dub", started_at=dt.datetime.now(dt.UTC), video="s3://b/v.mp4", audio="s3://b/a.wav", output=None, status=status, error=None, failed_stage=None, config_hash="h", preset="default", stage_seconds={}, stages_cached=[], probe_flags=[], lipdub_version="0")


def test_manifest_rows_go_to_s3_one_file_per_run(s3, s3_bucket):
    root = f"{s3_bucket}/manifest-test"
    write_rows(root, "clips", "run-a", [_row("run-a", "ok")], ClipRow)
    write_rows(root, "clips", "run-b", [_row("run-b", "failed")], ClipRow)
    assert sorted(s3.ls(f"{root}/clips")) == [f"{root[5:]}/clips/run-a.parquet", f"{root[5:]}/clips/run-b.parquet"]
    assert sorted(read_table(root, "clips").column("status").to_pylist()) == ["failed", "ok"]
