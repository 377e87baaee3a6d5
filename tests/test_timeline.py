"""sync_mode: how long the output runs and which source frame each output frame shows."""

import numpy as np

from lipdub.infra.config import SyncMode
from lipdub.timeline import build_timeline


def test_auto_bounces_when_the_dub_is_longer():
    t = build_timeline(5, 25.0, 10 / 25, SyncMode.auto)
    assert t.mode is SyncMode.bounce
    assert t.source_index.tolist() == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1]
    assert np.isclose(t.audio_duration_s, 0.4)


def test_auto_cuts_when_the_dub_is_shorter():
    t = build_timeline(100, 25.0, 2.0, SyncMode.auto)
    assert t.mode is SyncMode.cut_off and t.n_frames == 50
    assert t.source_index.tolist() == list(range(50))


def test_loop_restarts_from_the_first_frame():
    t = build_timeline(4, 10.0, 1.0, SyncMode.loop)
    assert t.source_index.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_silence_keeps_the_video_length():
    t = build_timeline(50, 25.0, 1.0, SyncMode.silence)
    assert t.n_frames == 50 and np.isclose(t.audio_duration_s, 2.0)


def test_cut_off_ends_with_the_shorter_input():
    assert build_timeline(50, 25.0, 4.0, SyncMode.cut_off).n_frames == 50
    assert build_timeline(50, 25.0, 1.0, SyncMode.cut_off).n_frames == 25


def test_output_duration_matches_the_dub_within_one_frame_at_odd_rates():
    fps = 1350 / 61
    t = build_timeline(135, fps, 6.723, SyncMode.auto)
    assert abs(t.n_frames / fps - 6.723) <= 0.5 / fps
