"""dub_clip end to end under Prefect, and what a re-run reuses."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from lipdub import media
from lipdub.flows.dub_clip import dub_clip
from lipdub.infra.config import load_config
from lipdub.infra.layout import STAGES, ClipLayout, clip_id_for

pytestmark = pytest.mark.usefixtures("prefect_server")


def _run(talking_face, dub, out, cfg):
    events: list[tuple[str, str]] = []
    row = dub_clip(talking_face.video_path, dub, out, cfg, on_event=lambda s, what, sec: events.append((s, what)))
    ran = [s for s, what in events if what == "done"]
    reused = [s for s, what in events if what == "cached"]
    return row, ran, reused


@pytest.fixture(scope="module")
def first_run(talking_face, short_dub_wav, tmp_path_factory):
    work = tmp_path_factory.mktemp("flow")
    cfg = load_config(work_dir=work / "work")
    out = work / "out.mp4"
    row, ran, _ = _run(talking_face, short_dub_wav, out, cfg)
    return cfg, out, row, ran


def test_flow_writes_a_playable_output_the_length_of_the_dub(first_run, short_dub_wav):
    cfg, out, row, ran = first_run
    assert ran == list(STAGES)
    info = media.probe(out)
    dub_s = media.probe(short_dub_wav).audio.duration_s
    assert abs(info.video.duration_s - dub_s) <= 1 / 25 and info.audio is not None
    assert row.status == "ok" and row.sync_mode == "cut_off"


def test_manifest_row_has_sync_before_and_after(first_run):
    cfg, out, row, _ = first_run
    table = pq.read_table(cfg.manifests / "clips").to_pylist()
    mine = [r for r in table if r["run_id"] == row.run_id]
    assert len(mine) == 1 and mine[0]["status"] == "ok" and mine[0]["output"] == str(out)
    assert mine[0]["sync_offset_frames_after"] is not None and mine[0]["sync_offset_frames_before"] is not None
    assert mine[0]["sync_verdict_after"] in ("fine", "noticeable", "unacceptable")
    assert mine[0]["video_crf"] <= 18 and mine[0]["video_trial_psnr_db"] >= 45.0  # the CRF the blend chose, and what it keeps
    assert set(dict(mine[0]["stage_seconds"])) == set(STAGES)
    windows = pq.read_table(cfg.manifests / "drift_windows").to_pylist()
    assert {w["which"] for w in windows if w["run_id"] == row.run_id} == {"output", "source"}


def test_rerun_reuses_every_stage(first_run, talking_face, short_dub_wav):
    cfg, out, _, _ = first_run
    row, ran, reused = _run(talking_face, short_dub_wav, out, cfg)
    assert ran == [] and reused == list(STAGES)
    assert row.stages_cached == list(STAGES)


def test_deleting_one_stage_redoes_it_and_those_after_it(first_run, talking_face, short_dub_wav):
    cfg, out, _, _ = first_run
    layout = ClipLayout(cfg.work_dir, clip_id_for(talking_face.video_path, short_dub_wav))
    shutil.rmtree(layout.stage_dir("generate"))
    _, ran, reused = _run(talking_face, short_dub_wav, out, cfg)
    assert ran == ["generate", "enhance", "blend", "remux", "drift"]
    assert reused == ["probe", "audio_clean", "face_detect", "stabilize"]


def test_changing_one_stage_config_redoes_only_it_and_later(first_run, talking_face, short_dub_wav):
    cfg, out, _, _ = first_run
    changed = cfg.model_copy(update={"blend": cfg.blend.model_copy(update={"crf": 23})})
    _, ran, reused = _run(talking_face, short_dub_wav, out, changed)
    assert ran == ["blend", "remux", "drift"]
    assert reused == ["probe", "audio_clean", "face_detect", "stabilize", "generate", "enhance"]


def test_capping_the_mouth_resolution_redoes_the_stages_that_use_it(first_run, talking_face, short_dub_wav):
    """generate.max_canonical_size lives in the generate section but sizes stabilize's canonical face."""
    cfg, out, _, _ = first_run
    layout = ClipLayout(cfg.work_dir, clip_id_for(talking_face.video_path, short_dub_wav))
    own = int(np.load(layout.artifact("stabilize", "landmarks.npz"))["canonical_size"])
    above = cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"max_canonical_size": own + 64})})
    _, ran, _ = _run(talking_face, short_dub_wav, out, above)
    assert ran[0] == "stabilize" and int(np.load(layout.artifact("stabilize", "landmarks.npz"))["canonical_size"]) == own
    below = cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"max_canonical_size": own - 64})})
    _, ran, reused = _run(talking_face, short_dub_wav, out, below)
    assert ran == ["stabilize", "generate", "enhance", "blend", "remux", "drift"]
    assert reused == ["probe", "audio_clean", "face_detect"]
    assert int(np.load(layout.artifact("stabilize", "landmarks.npz"))["canonical_size"]) == own - 64
    assert media.probe(out).video.n_frames > 0


def test_a_failed_run_records_the_stage_and_error(tmp_path, media_dir):
    from lipdub import LipdubError, samples

    faceless = samples.make_faceless_video(media_dir / "noface.mp4")
    dub = samples.write_wav(tmp_path / "d.wav", samples.synth_speech(samples.speech_envelope(2.0, 25, 1), 25.0), 16000)
    cfg = load_config(work_dir=tmp_path / "work")
    out = tmp_path / "out.mp4"
    with pytest.raises(LipdubError, match="no face"):
        dub_clip(faceless, dub, out, cfg)
    assert not out.exists()
    rows = pq.read_table(cfg.manifests / "clips").to_pylist()
    assert rows[0]["status"] == "failed" and rows[0]["failed_stage"] in ("face_detect", "stabilize")
    assert "no face" in rows[0]["error"]


def test_the_demo_command_dubs_its_synthetic_sample(tmp_path):
    """`bash scripts/demo.sh`, the README's first command, ends in `lipdub demo`."""
    from typer.testing import CliRunner

    from lipdub.cli import app

    out = tmp_path / "demo.mp4"
    result = CliRunner().invoke(app, ["demo", "-o", str(out), "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    info = media.probe(out)
    assert info.video.n_frames > 100 and info.audio is not None and f"wrote {out}" in result.stdout


def test_run_says_when_the_source_itself_is_out_of_sync(tmp_path, short_dub_wav, late_face):
    """The dub comes out in sync (the mapping learns the source's lag); the user still hears
    that the footage they gave was off, and where to look."""
    import re

    from typer.testing import CliRunner

    from lipdub.cli import app

    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(app, ["run", str(late_face), str(short_dub_wav), "-o", str(out), "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    said = re.search(r"own sound reads \+(\d+\.\d) frames off its lips \((noticeable|unacceptable)\)", result.stdout)
    assert said and abs(float(said.group(1)) - 4) <= 1.0, result.stdout
    assert f"lipdub doctor {late_face}" in result.stdout
