"""Bad input: one line naming the file and the problem, exit status 1, nothing at the output path."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from lipdub import samples
from lipdub.cli import app

pytestmark = pytest.mark.usefixtures("prefect_server")


def _lipdub(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _assert_one_line_error(result, path, problem: str) -> None:
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lipdub: error: ") and str(path) in last and problem in last, last


@pytest.fixture()
def out(tmp_path):
    path = tmp_path / "out.mp4"
    yield path
    assert not path.exists()  # nothing partial is ever left at the output path
    assert not list(tmp_path.glob(".out.mp4*"))


def test_missing_video(tmp_path, dub_wav, out):
    missing = tmp_path / "nope.mp4"
    _assert_one_line_error(_lipdub("run", missing, dub_wav, "-o", out, "--work-dir", tmp_path / "w"), missing, "file not found")


def test_file_that_is_not_media(tmp_path, dub_wav, out):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    _assert_one_line_error(_lipdub("run", fake, dub_wav, "-o", out, "--work-dir", tmp_path / "w"), fake, "not a readable media file")


def test_video_without_a_video_stream(tmp_path, dub_wav, out):
    _assert_one_line_error(_lipdub("run", dub_wav, dub_wav, "-o", out, "--work-dir", tmp_path / "w"), dub_wav, "has no video stream")


def test_dub_without_an_audio_stream(tmp_path, talking_face, media_dir, out):
    silent_video = samples.make_faceless_video(media_dir / "no-audio.mp4")
    _assert_one_line_error(_lipdub("run", talking_face.video_path, silent_video, "-o", out, "--work-dir", tmp_path / "w"), silent_video, "has no audio stream")


def test_empty_audio(tmp_path, talking_face, out):
    empty = samples.write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    _assert_one_line_error(_lipdub("run", talking_face.video_path, empty, "-o", out, "--work-dir", tmp_path / "w"), empty, "empty")


def test_silent_audio(tmp_path, talking_face, out):
    silent = samples.write_wav(tmp_path / "silent.wav", np.zeros(16000 * 3, np.float32), 16000)
    _assert_one_line_error(_lipdub("run", talking_face.video_path, silent, "-o", out, "--work-dir", tmp_path / "w"), silent, "no speech")


def test_no_face_in_the_whole_clip(tmp_path, media_dir, dub_wav, out):
    faceless = samples.make_faceless_video(media_dir / "faceless.mp4")
    _assert_one_line_error(_lipdub("run", faceless, dub_wav, "-o", out, "--work-dir", tmp_path / "w"), faceless, "no face found")


def test_unwritable_output(tmp_path, talking_face, dub_wav):
    target = "/sys/lipdub-out.mp4"
    _assert_one_line_error(_lipdub("run", talking_face.video_path, dub_wav, "-o", target, "--work-dir", tmp_path / "w"), target, "not writable")


def test_output_in_a_missing_folder(tmp_path, talking_face, dub_wav):
    target = tmp_path / "missing" / "out.mp4"
    _assert_one_line_error(_lipdub("run", talking_face.video_path, dub_wav, "-o", target, "--work-dir", tmp_path / "w"), target, "does not exist")
    assert not target.parent.exists()


def test_output_never_overwrites_an_input(tmp_path, talking_face, dub_wav):
    before = talking_face.video_path.read_bytes()
    _assert_one_line_error(_lipdub("run", talking_face.video_path, dub_wav, "-o", talking_face.video_path, "--work-dir", tmp_path / "w"), talking_face.video_path, "overwrite an input")
    assert talking_face.video_path.read_bytes() == before


def test_help_lists_the_run_command():
    result = _lipdub("--help")
    assert result.exit_code == 0 and "run" in result.output and "demo" in result.output


def test_a_face_point_that_is_not_x_y(tmp_path, talking_face, dub_wav, out):
    result = _lipdub("run", talking_face.video_path, dub_wav, "-o", out, "--work-dir", tmp_path / "w", "--face", "12")
    assert result.exit_code == 2 and "--face 12" in result.stderr and "x,y" in result.stderr


def test_a_face_point_on_no_face(tmp_path, talking_face, dub_wav, out):
    result = _lipdub("run", talking_face.video_path, dub_wav, "-o", out, "--work-dir", tmp_path / "w", "--face", "3,3")
    _assert_one_line_error(result, talking_face.video_path, "no face found at x,y = 3,3")


def test_batch_with_a_job_file_that_does_not_exist(tmp_path):
    missing = tmp_path / "jobs.csv"
    _assert_one_line_error(_lipdub("batch", missing, "-o", tmp_path / "out", "--work-dir", tmp_path / "w", "--no-ray"), missing, "file not found")


def test_batch_with_a_bad_row_names_the_file_and_row(tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("video,audio,speed\na.mp4,b.wav,2\n")
    _assert_one_line_error(_lipdub("batch", jobs, "-o", tmp_path / "out", "--work-dir", tmp_path / "w", "--no-ray"), jobs, "row 1: speed")
