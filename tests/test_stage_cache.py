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
