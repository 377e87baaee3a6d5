"""Ray actors host the models: chunks spread over workers give the same artifacts as one
process, and each worker loads a model once however many chunks and clips it serves."""

import numpy as np
import pytest

from lipdub import media, samples
from lipdub.infra.config import FaceConfig, RayConfig
from lipdub.infra.engine import LOCAL, chunks, engine_for
from lipdub.tasks.face_detect import face_detect
from lipdub.tasks.stabilize import landmarks_in


@pytest.fixture(scope="module")
def ray_engine():
    from lipdub.infra import engine

    engine.shutdown()  # fresh actors: this test counts model loads from zero
    eng = engine_for(RayConfig(enabled=True, workers=2))
    yield eng
    engine.shutdown()


def test_chunks_cover_every_item_once():
    assert chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunks(0, 4) == []


def test_ray_chunks_match_one_process_and_models_load_once_per_worker(ray_engine, talking_face, tmp_path):
    video = talking_face.video_path
    stream = media.probe(video).video
    on_ray, here = tmp_path / "ray", tmp_path / "local"
    on_ray.mkdir(), here.mkdir()
    cfg = FaceConfig(chunk_frames=16)
    assert len(chunks(stream.n_frames, 16)) >= 4
    face_detect(video, stream, on_ray, cfg, ray_engine)
    face_detect(video, stream, here, cfg, LOCAL)
    boxes = np.load(on_ray / "faces.npz")["boxes"]
    assert np.array_equal(boxes, np.load(here / "faces.npz")["boxes"], equal_nan=True)
    lm = landmarks_in(video, stream, boxes, "mediapipe", 16, ray_engine)
    assert np.array_equal(lm, landmarks_in(video, stream, boxes, "mediapipe", 16, LOCAL), equal_nan=True)
    assert ray_engine.loads() == {"detector:mediapipe": 2, "landmarker:mediapipe": 2}

    # a second clip: the same actors, no new loads
    other = samples.make_talking_face(tmp_path / "other.mp4", duration_s=2.0, seed=5)
    again = tmp_path / "again"
    again.mkdir()
    face_detect(other.video_path, media.probe(other.video_path).video, again, cfg, ray_engine)
    assert ray_engine.loads() == {"detector:mediapipe": 2, "landmarker:mediapipe": 2}
    pids = {pid for pid in __import__("ray").get([a.pid.remote() for a in ray_engine.actors])}
    assert len(pids) == 2  # two worker processes, not one per chunk


def test_segments_blended_on_ray_are_the_same_bytes_as_in_process(ray_engine, talking_face, short_dub_wav, tmp_path):
    from lipdub.infra.clip_run import ClipRun
    from lipdub.infra.config import BlendConfig, load_config
    from lipdub.infra.layout import STAGES
    from lipdub.tasks import run_stages
    from lipdub.tasks.blend import blend
    from lipdub.tasks.probe import ProbeRecord, video_stream

    clip = ClipRun.start(talking_face.video_path, short_dub_wav, tmp_path / "out.mp4", load_config(work_dir=tmp_path / "work"))
    run_stages(clip, STAGES[: STAGES.index("blend")])
    at = clip.layout.artifact
    stream = video_stream(clip.video, clip.record("probe", ProbeRecord))
    args = (clip.video, stream, at("stabilize", "landmarks.npz"), at("enhance", "mouths.npy"), at("generate", "masks.npy"), at("generate", "selection.npz"))
    cfg = BlendConfig(chunk_frames=16)
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    a = blend(*args, here, cfg)
    b = blend(*args, there, cfg, ray_engine)
    assert a == b and len(a.segments) >= 3 and a.frames_blended > 0
    for name in a.segments:
        assert (here / "segments" / name).read_bytes() == (there / "segments" / name).read_bytes()
