"""Every stage on the synthetic talking face, called as plain functions (no Prefect)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lipdub import face_geometry as fg
from lipdub import media
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.config import load_config
from lipdub.infra.layout import STAGES
from lipdub.tasks import blend, run_stages



@pytest.fixture(scope="module")
def clip(talking_face, dub_wav, tmp_path_factory) -> ClipRun:
    work = tmp_path_factory.mktemp("stages")
    run = ClipRun.start(talking_face.video_path, dub_wav, work / "out.mp4", load_config(work_dir=work / "work"))
    run_stages(run, STAGES)
    return run


def test_probe_flags_a_dub_longer_than_the_video(clip):
    rec = clip.records["probe"]
    assert rec.n_frames == 100 and rec.actual_fps == pytest.approx(25.0, rel=1e-3)
    assert "dub_longer" in rec.flags and not rec.vfr
    assert rec.dub_sample_rate == 22050 and rec.dub_channels == 2


def test_audio_clean_measures_and_keeps_the_dub_untouched(clip, dub_wav):
    rec = clip.records["audio_clean"]
    assert 0.3 < rec.dub.speech_ratio < 0.95
    assert rec.dub.leading_silence_s == pytest.approx(0.3, abs=0.1)
    assert rec.dub.peak_dbfs == pytest.approx(-6, abs=1.5)
    assert rec.dub.noise_floor_dbfs < -50
    analysis, rate = media.read_audio(clip.layout.artifact("audio_clean", "analysis.wav"))
    assert rate == 16000 and analysis.shape[1] == 1
    assert 20 * np.log10(np.abs(analysis).max()) == pytest.approx(-3.0, abs=0.05)
    delivered, d_rate = media.read_audio(clip.layout.artifact("audio_clean", "delivery.wav"))
    original, o_rate = media.read_audio(dub_wav)
    assert d_rate == o_rate and np.array_equal(delivered, original)


def test_face_detect_tracks_the_face_in_every_frame(clip):
    rec = clip.records["face_detect"]
    assert rec.frames_with_face == 100 and rec.max_faces_in_frame == 1 and not rec.tiny
    faces = np.load(clip.layout.artifact("face_detect", "faces.npz"))
    x0, y0, x1, y1 = rec.crop_box
    boxes = faces["boxes"]
    assert (boxes[:, 0] >= x0).all() and (boxes[:, 2] <= x1).all() and (boxes[:, 3] <= y1).all()


def test_stabilize_finds_lips_that_follow_the_driven_mouth(clip, talking_face):
    lm = np.load(clip.layout.artifact("stabilize", "landmarks.npz"))
    assert lm["usable"].all()
    r = np.corrcoef(lm["opening"], talking_face.mouth_opening)[0, 1]
    assert r > 0.8
    # the canonical map puts the outer eye corners where the template says
    eyes = np.array([fg.apply(m, p[[fg.EYE_OUTER_L, fg.EYE_OUTER_R]]) for m, p in zip(lm["to_canonical"], lm["landmarks"])])
    size = int(lm["canonical_size"])
    assert np.abs(eyes[:, :, 1] - fg.EYE_Y * size).max() < 0.05 * size


def test_generate_follows_the_dub_and_closes_the_mouth_in_silence(clip):
    rec = clip.records["generate"]
    assert rec.n_output_frames == 125 and rec.sync_mode == "bounce"
    assert rec.frames_generated == 125 and rec.mapping == "speaker"
    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    lm = np.load(clip.layout.artifact("stabilize", "landmarks.npz"))
    chosen_opening = lm["opening"][sel["chosen"]]
    speech = sel["dub_speech"]
    assert chosen_opening[~speech].mean() < 0.5 * chosen_opening[speech].mean()
    closed = chosen_opening < 0.05 * np.percentile(lm["opening"], 95)
    assert closed[~speech].mean() >= 0.9
    assert rec.mean_run_length > 1.5  # runs of consecutive source frames, not a jitter of single frames


def test_enhance_keeps_shape_and_changes_pixels(clip):
    before = np.load(clip.layout.artifact("generate", "mouths.npy"))
    after = np.load(clip.layout.artifact("enhance", "mouths.npy"))
    assert before.shape == after.shape and before.dtype == after.dtype == np.uint8
    assert 0 < np.abs(before.astype(int) - after.astype(int)).mean() < 20


def test_blend_leaves_pixels_outside_the_mask_bit_identical(clip, talking_face):
    lm = np.load(clip.layout.artifact("stabilize", "landmarks.npz"))
    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    mouths = np.load(clip.layout.artifact("enhance", "mouths.npy"))
    masks = np.load(clip.layout.artifact("generate", "masks.npy"))
    stream = media.probe(talking_face.video_path).video
    frames = dict(media.read_frames(talking_face.video_path, stream, 40, 45))
    for j in range(40, 45):
        t = sel["target"][j]
        out, changed = blend.paste(frames[t], mouths[j], masks[j], lm["to_canonical"][t], int(lm["canonical_size"]), 4)
        diff = np.any(out != frames[t], axis=2)
        assert 0 < diff.sum() <= changed
        ys, xs = np.nonzero(diff)
        eye_line = lm["landmarks"][t][[fg.EYE_OUTER_L, fg.EYE_OUTER_R], 1].max()
        assert ys.min() > eye_line  # nothing above the eyes changes
    assert clip.records["blend"].frames_blended == 125


def test_remux_matches_the_dub_duration_at_the_source_rate(clip):
    out = media.probe(clip.layout.artifact("remux", "output.mp4"))
    assert out.video.n_frames == 125
    assert out.video.actual_fps == pytest.approx(25.0, rel=1e-3)
    assert abs(out.video.duration_s - 5.0) <= 1 / 25
    assert out.audio.codec == "aac"


def test_remux_puts_the_dub_exactly_under_the_first_frame(clip):
    """Where the dub's first sample plays, by timestamps, is where the first frame shows."""
    path = clip.layout.artifact("remux", "output.mp4")
    out = media.probe(path)
    played, rate = media.read_audio(path, mono=True)
    original, _ = media.read_audio(clip.layout.artifact("audio_clean", "delivery.wav"), rate, mono=True)
    n = min(len(played), len(original))
    corr = np.correlate(played[: n, 0], original[: n - 4096, 0], mode="valid")
    lag_s = int(np.argmax(corr)) / rate  # encoder priming ahead of the dub's first sample
    assert abs(out.audio.start_time_s + lag_s - out.video.start_time_s) < 0.002
    assert abs(len(played) / rate - lag_s - 5.0) <= 1 / 25


def test_drift_measures_output_and_source(clip):
    rec = clip.records["drift"]
    assert rec.source is not None and rec.source.offset_frames is not None
    assert rec.output.offset_frames is not None and rec.output.confidence > 0.1
    # the synthetic source is in sync; smooth synthetic syllables blur the peak by a couple of frames
    assert abs(rec.source.offset_frames) <= 2.5
    assert abs(rec.output.offset_frames) <= 2.5


def test_generate_closes_the_lips_on_the_dubs_bilabials(clip, tmp_path, monkeypatch):
    """Where the phone finder puts a /p b m/ in open speech, the chosen mouth is closed."""
    from lipdub import phones
    from lipdub.tasks import generate
    from lipdub.tasks.probe import video_stream

    sel = np.load(clip.layout.artifact("generate", "selection.npz"))
    lm = np.load(clip.layout.artifact("stabilize", "landmarks.npz"))
    fps = float(sel["fps"])
    open_now = lm["opening"][sel["chosen"]] > 0.5 * np.percentile(lm["opening"], 95)
    frames = np.flatnonzero(sel["dub_speech"] & open_now)[::6][:5]
    assert len(frames) >= 3
    found = [phones.Phone("M", j / fps - 0.02, j / fps + 0.02) for j in frames]
    monkeypatch.setattr(phones, "of_speech", lambda wav, language: found)
    probe_rec = clip.records["probe"]
    at = clip.layout.artifact
    rec = generate.generate(clip.video, probe_rec, video_stream(clip.video, probe_rec), at("stabilize", "landmarks.npz"), at("audio_clean", "analysis.wav"), at("audio_clean", "source_analysis.wav"), tmp_path, clip.config.generate, clip.config.remux.sync_mode)
    again = np.load(tmp_path / "selection.npz")
    assert rec.bilabial_frames == len(frames) and again["dub_closures"][frames].all()
    closed = lm["opening"][again["chosen"][frames]] < 0.1 * np.percentile(lm["opening"], 95)
    assert closed.all()
    # and nowhere else did the mouths change much: the rest of the speech still opens
    rest = again["dub_speech"] & ~again["dub_closures"]
    assert lm["opening"][again["chosen"][rest]].mean() > 0.6 * lm["opening"][sel["chosen"][rest]].mean()


def test_a_source_whose_sound_does_not_move_its_lips_falls_back_to_the_generic_mapping(tmp_path, dub_wav):
    """Lips driven by one envelope, soundtrack from another: the speaker's own mapping
    would be noise, so generate maps loudness to opening instead."""
    from lipdub import samples

    face = samples.make_talking_face(tmp_path / "face.mp4", duration_s=4.0, seed=2)
    rate = 44100
    other = samples.synth_speech(samples.speech_envelope(4.0, 25.0, seed=9), 25.0, rate, seed=9)
    dubbed_over = tmp_path / "unrelated.mp4"
    media.remux_with_audio(face.video_path, np.repeat(other[:, None], 2, axis=1), rate, dubbed_over)
    run = ClipRun.start(dubbed_over, dub_wav, tmp_path / "out.mp4", load_config(work_dir=tmp_path / "work"))
    run_stages(run, STAGES[: STAGES.index("generate") + 1])
    assert run.records["generate"].mapping == "generic"


def test_a_source_whose_sound_runs_late_teaches_lips_in_sync_with_the_dub(tmp_path, dub_wav, late_face):
    """The speaker mapping learns the source's sound against its lips; learnt as muxed, a
    source 4 frames late made dubs 2.3 frames late."""
    run = ClipRun.start(late_face, dub_wav, tmp_path / "out.mp4", load_config(work_dir=tmp_path / "work"))
    run_stages(run, STAGES)
    generated, measured = run.records["generate"], run.records["drift"]
    assert generated.mapping == "speaker"
    assert generated.source_offset_frames == pytest.approx(4, abs=1.0)
    assert measured.source.offset_frames == pytest.approx(4, abs=1.0)  # the drift stage reads the source the same way
    assert abs(measured.output.offset_frames) <= 1.0


def test_a_long_dub_never_holds_all_its_mouths_in_memory(tmp_path):
    # a 4 s, 512 px face under 48 s of speech: 1200 output mouths (147 MB), each a copy
    # of one of 100 source frames, go to disk a block at a time. Made whole, generate held
    # three copies of them at once (4.1 GB for a 5 min dub) and enhance one
    import tracemalloc

    from lipdub import samples

    face = samples.make_talking_face(tmp_path / "face.mp4", duration_s=4.0, fps=25, size=512, seed=3)
    envelope = samples.speech_envelope(48.0, 25, seed=7)
    long_wav = samples.write_wav(tmp_path / "long.wav", samples.synth_speech(envelope, 25, 16000, seed=7), 16000)
    run = ClipRun.start(face.video_path, long_wav, tmp_path / "out.mp4", load_config(work_dir=tmp_path / "work"))
    run_stages(run, STAGES[: STAGES.index("generate")])
    peaks = {}
    for stage in ("generate", "enhance"):
        tracemalloc.start()
        try:
            run_stages(run, [stage])
            peaks[stage] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    mouths = np.load(run.layout.artifact("enhance", "mouths.npy"), mmap_mode="r")
    assert len(mouths) == 1200 and run.records["generate"].frames_generated > 1000
    assert max(peaks.values()) < 0.5 * mouths.nbytes, peaks
    chosen = np.load(run.layout.artifact("generate", "selection.npz"))["chosen"]
    library = np.load(run.layout.artifact("generate", "library.npy"), mmap_mode="r")
    generated = np.load(run.layout.artifact("generate", "mouths.npy"), mmap_mode="r")
    last = int(np.flatnonzero(chosen >= 0)[-1])
    lm = np.load(run.layout.artifact("stabilize", "landmarks.npz"))
    outer = lm["lips"][chosen[last], : len(fg.LIPS_OUTER)] - np.array(fg.mouth_box(int(lm["canonical_size"]))[:2])
    on_lips = cv2.fillPoly(np.zeros(library.shape[1:3], np.uint8), [np.round(outer).astype(np.int32)], 1) > 0
    # the block writer put the chosen frame there: its lips as filmed (the jaw is fitted to the target's)
    assert on_lips.sum() > 100 and np.array_equal(generated[last][on_lips], library[chosen[last]][on_lips])
