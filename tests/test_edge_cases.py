"""Edge cases of real footage: a still image as the source, faces too small or turned
away (passed through, never garbled), frames with no face, a close-up whose padded crop
leaves the frame."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub import face_geometry as fg
from lipdub import media, samples
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.config import load_config
from lipdub.infra.layout import STAGES
from lipdub.tasks import run_stages


def _dub(video, audio, tmp_path, **overrides) -> ClipRun:
    clip = ClipRun.start(video, audio, tmp_path / "out.mp4", load_config(work_dir=tmp_path / "work", **overrides))
    run_stages(clip, STAGES)
    return clip


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def _frames(path) -> dict[int, np.ndarray]:
    return dict(media.read_frames(path, media.probe(path).video))


def _passed_through(clip: ClipRun, source) -> list[float]:
    """PSNR of each output frame against the source frame it shows."""
    out = _frames(clip.layout.artifact("remux", "output.mp4"))
    src = _frames(source)
    target = np.load(clip.layout.artifact("generate", "selection.npz"))["target"]
    return [_psnr(out[j], src[int(t)]) for j, t in enumerate(target) if j in out]


def _lip_gap(video, clip: ClipRun) -> np.ndarray:
    """Inner-lip gap (px) in every frame of `video`, by the face mesh, around the photo's face box."""
    from lipdub.tasks.stabilize import landmarks_in

    stream = media.probe(video).video
    boxes = np.load(clip.layout.artifact("face_detect", "faces.npz"))["boxes"][np.zeros(stream.n_frames, int)]
    pts = landmarks_in(video, stream, boxes, "mediapipe")
    return pts[:, fg.LOWER_INNER_LIP, 1] - pts[:, fg.UPPER_INNER_LIP, 1]


def test_a_still_image_is_looped_for_the_dub_and_its_mouth_opens_with_the_speech(tmp_path, short_dub_wav):
    still = samples.make_still_image(tmp_path / "photo.png")
    clip = _dub(still, short_dub_wav, tmp_path)
    assert "still_image" in clip.records["probe"].flags
    gen = clip.records["generate"]
    assert gen.mapping == "warp" and gen.frames_generated == gen.n_output_frames
    out = clip.layout.artifact("remux", "output.mp4")
    assert abs(media.probe(out).video.duration_s - media.probe(short_dub_wav).audio.duration_s) <= 1 / 25
    # the face mesh, run on the encoded output, sees the lips part where the dub speaks
    gap = _lip_gap(out, clip)
    speech = np.load(clip.layout.artifact("generate", "selection.npz"))["dub_speech"]
    assert np.nanmean(gap[speech]) > np.nanmean(gap[~speech]) + 4  # pixels, on a 256 px face
    assert np.corrcoef(np.nan_to_num(gap), np.load(clip.layout.artifact("generate", "selection.npz"))["predicted_opening"])[0, 1] > 0.6


def test_a_still_image_caught_mid_word_closes_in_silence_and_is_never_opened_wider(tmp_path, short_dub_wav):
    still = samples.make_still_image(tmp_path / "photo.png", opening=1.0)
    clip = _dub(still, short_dub_wav, tmp_path)
    photo_gap = float(_lip_gap(still, clip)[0])
    gap = _lip_gap(clip.layout.artifact("remux", "output.mp4"), clip)
    speech = np.load(clip.layout.artifact("generate", "selection.npz"))["dub_speech"]
    assert photo_gap > 10  # pixels: the photo's lips are well apart
    assert np.nanmax(gap) <= photo_gap + 2  # opened no wider than the photo: nothing painted over its mouth
    assert np.nanmean(gap[~speech]) < 0.3 * photo_gap  # brought together in the dub's silences
    assert np.nanmean(gap[speech]) > np.nanmean(gap[~speech]) + 4


def test_a_slightly_parted_photo_still_opens_as_wide_as_speech_asks(tmp_path, short_dub_wav):
    still = samples.make_still_image(tmp_path / "photo.png", opening=0.2)  # lips about a twelfth of the mouth's width apart
    clip = _dub(still, short_dub_wav, tmp_path)
    photo_gap = float(_lip_gap(still, clip)[0])
    gap = _lip_gap(clip.layout.artifact("remux", "output.mp4"), clip)
    speech = np.load(clip.layout.artifact("generate", "selection.npz"))["dub_speech"]
    assert 2 < photo_gap < 8
    assert np.nanmax(gap) > photo_gap + 2  # loud speech opens past the photo's own small gap
    assert np.nanmean(gap[~speech]) < 0.5 * photo_gap  # and silence closes it


@pytest.mark.parametrize("why, overrides", [
    ("tiny", {"face": {"min_face_px": 400}}),  # the 256 px test face counts as tiny here
    ("profile", {"stabilize": {"max_yaw_deg": 0.0}}),  # every frame counts as turned away
])
def test_faces_too_small_or_turned_away_are_passed_through(why, overrides, tmp_path, talking_face, short_dub_wav):
    clip = _dub(talking_face.video_path, short_dub_wav, tmp_path, **overrides)
    if why == "tiny":
        assert clip.records["face_detect"].tiny
    else:
        assert clip.records["stabilize"].profile_frames == clip.records["stabilize"].frames_with_landmarks
    assert clip.records["stabilize"].frames_usable == 0
    assert clip.records["generate"].frames_generated == 0 and clip.records["blend"].frames_blended == 0
    assert min(_passed_through(clip, talking_face.video_path)) > 40  # only the re-encode differs
    # and the run's line says why it has no sync to report
    from lipdub.flows.summary import clip_row, output_sync

    row = clip_row(clip)
    assert output_sync(row.get("sync_offset_frames_after"), row.get("sync_verdict_after"), row.get("frames_generated")) == "n/a (no face dubbed: every frame passed through)"


def test_frames_without_a_face_pass_through_and_the_rest_are_dubbed(tmp_path, short_dub_wav):
    video = samples.make_face_leaves_video(tmp_path / "cutaway.mp4", gone=(1.0, 1.6))
    clip = _dub(video, short_dub_wav, tmp_path)
    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    gone = (sel["target"] >= 25) & (sel["target"] < 40)
    assert gone.any() and (sel["chosen"][gone] == -1).all()
    assert (sel["chosen"][~gone] >= 0).mean() > 0.9
    psnr = np.array(_passed_through(clip, video))
    assert psnr[gone].min() > 40


def test_a_close_up_whose_padded_crop_leaves_the_frame_is_dubbed(tmp_path, short_dub_wav):
    video = samples.make_close_up_video(tmp_path / "close.mp4")
    clip = _dub(video, short_dub_wav, tmp_path)
    face = np.load(clip.layout.artifact("face_detect", "faces.npz"))["boxes"]
    size = np.nanmedian(face[:, 3] - face[:, 1])
    pad = clip.config.face.padding * size
    top, bottom = np.nanmin(face[:, 1]) - pad - 0.2 * size, np.nanmax(face[:, 3]) + pad + 0.1 * size
    assert top < 0 and bottom > 256  # the padded crop, forehead to below the chin, would leave the frame
    _, y0, _, y1 = clip.records["face_detect"].crop_box
    assert (y0, y1) == (0, 256)  # so it is clipped to it
    assert clip.records["generate"].frames_generated > 0.9 * clip.records["generate"].n_output_frames
    assert clip.records["blend"].frames_blended > 0
