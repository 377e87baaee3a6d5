"""face_detect keeps one identity: the largest face, followed by overlap, never another person."""

import numpy as np

from lipdub import media, samples
from lipdub.infra.config import FaceConfig
from lipdub.models.base import Detection
from lipdub.tasks.face_detect import crop_for, face_detect, follow


def test_target_is_the_larger_of_two_faces_in_every_frame(tmp_path):
    video = samples.make_two_faces_video(tmp_path / "two.mp4")
    stream = media.probe(video).video
    rec = face_detect(video, stream, tmp_path, FaceConfig(chunk_frames=16))
    boxes = np.load(tmp_path / "faces.npz")["boxes"]
    assert rec.max_faces_in_frame == 2 and rec.frames_with_face == stream.n_frames
    from lipdub.models.registry import get_model

    _, first = next(media.read_frames(video, stream))
    both = get_model("detector", "mediapipe", min_confidence=0.5).detect([first])[0]
    larger = max(both, key=lambda d: d.area)
    centres = (boxes[:, 0] + boxes[:, 2]) / 2
    assert np.abs(centres - (larger.box[0] + larger.box[2]) / 2).max() < 20  # always the larger face
    assert np.ptp(centres) < 20  # the track never jumps across the frame


def test_a_point_chooses_the_smaller_face_and_the_track_stays_on_it(tmp_path):
    video = samples.make_two_faces_video(tmp_path / "two.mp4")
    stream = media.probe(video).video
    face_detect(video, stream, tmp_path, FaceConfig(chunk_frames=16, point=(352, 128)))  # inside the small face
    boxes = np.load(tmp_path / "faces.npz")["boxes"]
    centres = (boxes[:, 0] + boxes[:, 2]) / 2
    assert not np.isnan(centres).any() and np.abs(centres - 352).max() < 20
    heights = boxes[:, 3] - boxes[:, 1]
    assert np.median(heights) < 200  # the 160 px face, not the 256 px one


def test_a_point_on_no_face_is_a_clear_error(tmp_path):
    import pytest

    from lipdub import LipdubError

    video = samples.make_two_faces_video(tmp_path / "two.mp4", duration_s=0.5)
    with pytest.raises(LipdubError, match=r"no face found at x,y = 440,10"):
        face_detect(video, media.probe(video).video, tmp_path, FaceConfig(point=(440, 10)))


def test_track_does_not_jump_to_a_bigger_newcomer():
    track = np.array([100, 100, 200, 200], np.float32)
    same = Detection((104, 102, 204, 203), 0.9)
    bigger_elsewhere = Detection((300, 50, 600, 350), 0.99)
    assert follow(track, [bigger_elsewhere, same], 0.3) is same
    assert follow(track, [bigger_elsewhere], 0.3) is None  # lost for this frame: passed through


def test_crop_is_padded_and_clipped_to_the_frame():
    boxes = np.array([[10, 20, 110, 140], [np.nan] * 4, [14, 22, 112, 141]], np.float32)
    x0, y0, x1, y1 = crop_for(boxes, 160, 150, padding=0.25)
    assert (x0, y0) == (0, 0) and x1 == 142 and y1 == 150
