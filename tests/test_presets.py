"""The fast preset: the mouth model runs at a lower rate and resolution, and its results
come back at the source's full rate and resolution."""

from __future__ import annotations

import numpy as np

from lipdub import media
from lipdub.infra.config import FaceConfig, StabilizeConfig, load_config
from lipdub.tasks.face_detect import face_detect
from lipdub.tasks.stabilize import fill_between, stabilize


def test_fill_between_interpolates_skipped_frames_and_never_invents_a_face():
    pts = np.arange(6, dtype=np.float32).reshape(6, 1, 1) * 10
    pts[4] = np.nan  # no face in a measured frame
    skipped = np.array([False, True, False, True, False, True])
    out = fill_between(pts, skipped)
    assert out[1, 0, 0] == 10 and np.isnan(out[3, 0, 0])  # between 0..20; next to a frame without a face
    assert np.array_equal(out[~skipped], pts[~skipped], equal_nan=True)


def test_landmarks_every_second_frame_stay_close_to_every_frame(tmp_path, talking_face):
    video = talking_face.video_path
    stream = media.probe(video).video
    face_detect(video, stream, tmp_path, FaceConfig())
    full, half = tmp_path / "full", tmp_path / "half"
    full.mkdir(), half.mkdir()
    stabilize(video, stream, tmp_path / "faces.npz", full, StabilizeConfig(), 256, False)
    rec = stabilize(video, stream, tmp_path / "faces.npz", half, StabilizeConfig(every_nth=2), 256, False)
    a, b = np.load(full / "landmarks.npz"), np.load(half / "landmarks.npz")
    assert rec.frames_with_landmarks == stream.n_frames  # every frame has landmarks, half of them interpolated
    err = np.linalg.norm(a["lips"] - b["lips"], axis=2)
    # canonical px on a 256 px face whose mouth moves fast; measured 0.2 median, 4.9 at the 95th percentile
    assert np.median(err) < 1.0 and np.percentile(err, 95) < 8


def test_the_fast_preset_processes_the_mouth_smaller_and_sparser():
    fast, default = load_config(preset="fast"), load_config()
    assert fast.stabilize.every_nth == 2 and default.stabilize.every_nth == 1
    assert fast.generate.max_canonical_size == 224 and default.generate.max_canonical_size is None
