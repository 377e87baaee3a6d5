"""Fixtures the tests make themselves: a synthetic talking face (scikit-image's astronaut
with a mouth driven by a known envelope) and speech-like dub tracks. Nothing is downloaded."""

from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lipdub import samples  # noqa: E402
from lipdub.infra.config import Config, load_config  # noqa: E402

FPS = 25.0


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def talking_face(media_dir) -> samples.TalkingFace:
    """4 s, 25 fps, 256 px talking face with its own in-sync soundtrack."""
    return samples.make_talking_face(media_dir / "face.mp4", duration_s=4.0, fps=FPS, seed=3)


@pytest.fixture(scope="session")
def dub_wav(media_dir) -> Path:
    """A different voice saying different syllables, 5 s long (longer than the video)."""
    envelope = samples.speech_envelope(5.0, FPS, seed=11)
    speech = samples.synth_speech(envelope, FPS, 22050, seed=11, f0_hz=190.0)
    return samples.write_wav(media_dir / "dub.wav", np.stack([speech, speech], axis=1), 22050)


@pytest.fixture(scope="session")
def late_face(media_dir) -> Path:
    """6 s talking face whose own soundtrack runs 4 frames late (a source out of sync)."""
    return samples.make_talking_face(media_dir / "late.mp4", duration_s=6.0, fps=FPS, seed=3, audio_shift_frames=4).video_path


@pytest.fixture(scope="session")
def short_dub_wav(media_dir) -> Path:
    envelope = samples.speech_envelope(2.5, FPS, seed=5)
    return samples.write_wav(media_dir / "short.wav", samples.synth_speech(envelope, FPS, 16000, seed=5), 16000)


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect API for the whole session (flows need one)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def s3_bucket() -> str:
    """A real S3 API on localhost (moto in server mode, as s3fs's own tests use) with one
    empty bucket; lipdub reaches it through the standard AWS variables, set for the session."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        boto3.client("s3").create_bucket(Bucket="lipdub-test")
        try:
            yield "s3://lipdub-test"
        finally:
            server.stop()


@pytest.fixture()
def config(tmp_path) -> Config:
    return load_config(work_dir=tmp_path / "work")


@pytest.fixture(scope="session", autouse=True)
def _stop_ray_at_the_end():
    """Batches start a local Ray in this process; stop it (and its actors) when the tests end."""
    yield
    from lipdub.infra import engine

    engine.shutdown()
