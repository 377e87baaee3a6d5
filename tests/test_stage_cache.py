"""The stage cache: same key reuses, a changed key or missing artifact reruns, writes are atomic."""

import pytest
from pydantic import BaseModel

from lipdub.infra.layout import ClipLayout
from lipdub.infra.stage_cache import run_stage


class Rec(BaseModel):
    value: int


def _produce(calls: list, value: int = 1, fail: bool = False):
    def produce(out):
        calls.append(out)
        (out / "faces.npz").write_bytes(b"x")
        if fail:
            raise RuntimeError("boom")
        return Rec(value=value)

    return produce


def test_same_key_is_reused_and_keeps_its_fingerprint(tmp_path):
    layout = ClipLayout(tmp_path, "clip")
    calls: list = []
    first = run_stage(layout, "face_detect", "cfg", ["in"], Rec, _produce(calls))
    second = run_stage(layout, "face_detect", "cfg", ["in"], Rec, _produce(calls))
    assert len(calls) == 1 and second.cached and second.fingerprint == first.fingerprint


def test_changed_config_or_missing_artifact_reruns_with_a_new_fingerprint(tmp_path):
    layout = ClipLayout(tmp_path, "clip")
    calls: list = []
    first = run_stage(layout, "face_detect", "cfg", ["in"], Rec, _produce(calls))
    changed = run_stage(layout, "face_detect", "cfg2", ["in"], Rec, _produce(calls))
    layout.artifact("face_detect", "faces.npz").unlink()
    again = run_stage(layout, "face_detect", "cfg2", ["in"], Rec, _produce(calls))
    assert len(calls) == 3
    assert len({first.fingerprint, changed.fingerprint, again.fingerprint}) == 3


def test_a_failing_stage_leaves_no_directory_behind(tmp_path):
    layout = ClipLayout(tmp_path, "clip")
    with pytest.raises(RuntimeError):
        run_stage(layout, "face_detect", "cfg", ["in"], Rec, _produce([], fail=True))
    assert not layout.stage_dir("face_detect").exists()
    assert list(layout.root.iterdir()) == []


def test_a_second_dub_of_a_video_takes_its_faces_and_landmarks_from_the_first(tmp_path, talking_face, short_dub_wav, monkeypatch):
    import numpy as np

    from lipdub.infra.clip_run import ClipRun
    from lipdub.infra.config import load_config
    from lipdub.tasks import face_detect, run_stages, stabilize

    calls = []
    for module, name in ((face_detect, "face_detect"), (stabilize, "stabilize")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    video, stages = talking_face.video_path, ["probe", "audio_clean", "face_detect", "stabilize"]

    def dub(audio, **overrides) -> ClipRun:
        clip = ClipRun.start(video, audio, None, load_config(work_dir=tmp_path / "work", **overrides))
        run_stages(clip, stages)
        return clip

    first = dub(short_dub_wav)
    assert calls == ["face_detect", "stabilize"]
    second = dub(video)  # the video's own soundtrack: another clip of the same video
    assert second.layout.clip_id != first.layout.clip_id and calls == ["face_detect", "stabilize"]
    for stage, name in (("face_detect", "faces.npz"), ("stabilize", "landmarks.npz")):
        a, b = np.load(first.layout.artifact(stage, name)), np.load(second.layout.artifact(stage, name))
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
        assert second.records[stage] == first.records[stage]
    dub(short_dub_wav, face={"min_confidence": 0.8})  # another face setting: found again, and so are the landmarks
    assert calls == ["face_detect", "stabilize"] * 2
