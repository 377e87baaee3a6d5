"""The sync doctor on synthetic talking faces with known shifts and stretches, and each cause."""

from __future__ import annotations

import av
import numpy as np
import pytest

from lipdub import media, samples
from lipdub.doctor.findings import audio_findings, stream_findings
from lipdub.doctor.repair import RepairPlan, plan_audio
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.config import load_config
from lipdub.infra.layout import DOCTOR_STAGES
from lipdub.sync import SyncResult, _peak, _peak_on_shared_frames, _rate_search, _window_peak, mode_weights
from lipdub.tasks import run_stages
from lipdub.tasks.stabilize import lips_for_sync


def _doctor(video, work, output=None):
    clip = ClipRun.start(video, video, output, load_config(work_dir=work), job="doctor")
    run_stages(clip, DOCTOR_STAGES if output else DOCTOR_STAGES[:-1])
    return clip


@pytest.fixture(scope="module")
def shifted_clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shifts")
    return {k: samples.make_talking_face(folder / f"shift{k:+d}.mp4", duration_s=6.0, seed=4, audio_shift_frames=k) for k in (-6, 0, 6)}


@pytest.fixture(scope="module")
def in_sync_signals(shifted_clips):
    """The in-sync clip as the sync measure takes it: canonical lips, the frames that have
    them, each frame's time on the audio's clock, and the 16 kHz mono soundtrack."""
    video = shifted_clips[0].video_path
    lm = np.load(_doctor(video, video.parent / "signals-work").layout.artifact("stabilize", "landmarks.npz"))
    lips, valid = lips_for_sync(lm)
    times = media.probe(video).frame_times_in_audio_s()
    return lips, valid, times, media.read_audio(video, 16000, mono=True)[0][:, 0]


@pytest.mark.parametrize("shift", [-6, 0, 6])
def test_known_shifts_are_found(shifted_clips, tmp_path, shift):
    rec = _doctor(shifted_clips[shift].video_path, tmp_path / "w").records["sync_analysis"]
    assert rec.sync.offset_frames == pytest.approx(shift, abs=2.5)
    assert rec.sync.sync_class == ("in_sync" if shift == 0 else "constant_offset")
    assert rec.offset_ms == pytest.approx(rec.sync.offset_frames / 25 * 1000)


def test_fix_slides_the_audio_back_into_sync(shifted_clips, tmp_path):
    out = tmp_path / "fixed.mp4"
    clip = _doctor(shifted_clips[6].video_path, tmp_path / "w", out)
    clip.publish(clip.layout.artifact("repair", "fixed.mp4"))
    rec = clip.records["repair"]
    assert any("slide audio" in step for step in rec.steps)
    assert abs(rec.after.offset_frames) <= 2.5 and rec.after.verdict != "unacceptable"
    info = media.probe(out)
    assert info.video.n_frames == media.probe(shifted_clips[6].video_path).video.n_frames
    assert info.audio.codec == "aac" and _audio_bitrate(out) > 150_000  # remux.audio_bitrate: 192k


def _audio_bitrate(path) -> int:
    with av.open(str(path)) as f:
        return f.streams.audio[0].bit_rate


def test_a_repair_that_falls_short_is_measured_and_repaired_again(shifted_clips, tmp_path, monkeypatch):
    """A misread offset or drift leaves part of itself behind; the repaired file is read
    again and corrected once more (here the first slide is made to cover half the offset)."""
    from lipdub.tasks import repair as repair_stage

    calls = []

    def half_first_slide(result, fps, plan, slide_above):
        plan = plan_audio(result, fps, plan, slide_above)
        if not calls:
            plan.delay_s /= 2
        calls.append(plan.delay_s)
        return plan

    monkeypatch.setattr(repair_stage, "plan_audio", half_first_slide)
    clip = _doctor(shifted_clips[6].video_path, tmp_path / "w", tmp_path / "fixed.mp4")
    rec = clip.records["repair"]
    assert len(calls) == 2 and calls[1] == pytest.approx(calls[0], abs=0.06)  # the half left behind is found
    assert any(step.startswith("measured the repaired file again: slide audio") for step in rec.steps)
    assert abs(rec.after.offset_frames) <= 1.5 and rec.after.verdict == "fine"
    assert not (clip.layout.stage_dir("repair") / "fixed.again.mp4").exists()


def test_fix_encodes_the_sound_at_the_configured_bitrate(shifted_clips, tmp_path):
    video = shifted_clips[6].video_path
    clip = ClipRun.start(video, video, tmp_path / "o.mp4", load_config(work_dir=tmp_path / "w", remux={"audio_bitrate": 64_000}), job="doctor")
    run_stages(clip, DOCTOR_STAGES)
    assert _audio_bitrate(clip.layout.artifact("repair", "fixed.mp4")) < 80_000


def test_a_new_analysis_rate_measures_again_on_the_same_landmarks(shifted_clips, tmp_path):
    """sync_analysis reads the audio at audio.analysis_sample_rate: its cache keys on that setting."""
    video = shifted_clips[0].video_path
    _doctor(video, tmp_path / "w")
    again = ClipRun.start(video, video, None, load_config(work_dir=tmp_path / "w", audio={"analysis_sample_rate": 8000}), job="doctor")
    run_stages(again, DOCTOR_STAGES[:-1])
    assert "stabilize" in again.cached and "sync_analysis" not in again.cached
    assert again.records["sync_analysis"].sync.offset_frames == pytest.approx(0, abs=2.5)


@pytest.mark.parametrize("stretch", [1.01, 0.995, 1.0])
def test_growing_drift_is_classed_and_its_rate_found(tmp_path, stretch):
    """The audio clock's rate is fitted on the whole clip: 1 % and -0.5 % come back within
    a tenth, and the same face with its audio untouched shows no drift at all."""
    video = samples.make_talking_face(tmp_path / "drift.mp4", duration_s=24.0, seed=9, audio_stretch=stretch).video_path
    rec = _doctor(video, tmp_path / "w").records["sync_analysis"]
    true_slope = (stretch - 1) * 25 * 60  # frames per minute
    if stretch == 1.0:
        assert rec.sync.sync_class == "in_sync" and rec.sync.drift_frames_per_min == 0.0
    else:
        assert rec.sync.sync_class == "growing_drift"
        # the verdict is the worst of it: 6 frames late by the end at +1 %, 3 early at -0.5 %
        assert rec.sync.verdict == {1.01: "unacceptable", 0.995: "noticeable"}[stretch]
        assert rec.sync.drift_frames_per_min == pytest.approx(true_slope, rel=0.1)


def test_wrong_declared_rate_and_vfr_are_named(tmp_path):
    from tests.test_media import _write_vfr

    info = media.probe(_write_vfr(tmp_path / "vfr.mp4", 60, 3))
    names = {f.name for f in stream_findings(info)}
    assert {"fps_declared_mismatch", "vfr"} <= names


def test_audio_start_offset_and_duration_mismatch_are_named(tmp_path, talking_face):
    samples_, rate = media.read_audio(talking_face.video_path)
    late = tmp_path / "late.mp4"
    padded = np.concatenate([samples_, np.zeros((rate, samples_.shape[1]), np.float32)])
    media.remux_with_audio(talking_face.video_path, padded, rate, late)
    names = {f.name for f in stream_findings(media.probe(late))}
    assert "duration_mismatch" in names


def test_audio_rate_mismatch_is_named(talking_face):
    info = media.probe(talking_face.video_path)
    # samples that last 8 % longer than the header says: a 44.1 kHz track labelled 48 kHz
    names = {f.name for f in stream_findings(info, decoded_audio_s=info.audio.duration_s * 1.088)}
    assert "audio_rate_mismatch" in names


def test_noise_and_long_silences_are_named():
    rate = 16000
    rng = np.random.default_rng(0)
    speech = np.sin(2 * np.pi * 180 * np.arange(rate) / rate) * 0.5
    quiet = np.concatenate([speech, np.zeros(2 * rate), speech])[:, None].astype(np.float32) + rng.normal(0, 1e-4, (4 * rate, 1)).astype(np.float32)
    noisy = quiet + rng.normal(0, 0.05, quiet.shape).astype(np.float32)
    assert {f.name for f in audio_findings(quiet, rate)} == {"long_silence"}
    assert "noisy_audio" in {f.name for f in audio_findings(noisy, rate)}


@pytest.mark.usefixtures("prefect_server")
def test_doctor_flow_checks_a_list_and_one_bad_clip_does_not_stop_it(shifted_clips, tmp_path):
    import pyarrow.parquet as pq

    from lipdub.flows.doctor import doctor

    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    cfg = load_config(work_dir=tmp_path / "w")
    (tmp_path / "fixed").mkdir()
    summary = doctor([shifted_clips[6].video_path, bad, shifted_clips[0].video_path], tmp_path / "fixed", cfg)
    assert [s["status"] for s in summary] == ["ok", "failed", "ok"]
    assert "not a readable media file" in summary[1]["error"]
    assert (tmp_path / "fixed" / "shift+6.fixed.mp4").exists()
    rows = pq.read_table(cfg.manifests / "clips").to_pylist()
    assert {r["job"] for r in rows} == {"doctor"} and len(rows) == 3
    ok = [r for r in rows if r["status"] == "ok" and r["video"].endswith("shift+6.mp4")][0]
    assert ok["sync_offset_frames_before"] > 3 and abs(ok["sync_offset_frames_after"]) <= 2.5 and ok["repairs"]


@pytest.mark.usefixtures("prefect_server")
def test_doctor_cli_prints_json_and_writes_the_plot(shifted_clips, tmp_path):
    import json

    from typer.testing import CliRunner

    from lipdub.cli import app

    plot = tmp_path / "sync.png"
    result = CliRunner().invoke(app, ["doctor", str(shifted_clips[-6].video_path), "--json", "--plot", str(plot), "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sync"]["offset_frames"] < -3 and report["sync"]["sync_class"] == "constant_offset"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_doctor_cli_needs_an_output_for_fix(shifted_clips):
    from typer.testing import CliRunner

    from lipdub.cli import app

    result = CliRunner().invoke(app, ["doctor", str(shifted_clips[0].video_path), "--fix"])
    assert result.exit_code == 2 and "--fix and -o go together" in result.stderr


def _with_late_audio(talking_face, path, audio_start_s):
    """The talking face's picture with its audio stream starting `audio_start_s` later (an edit-list style shift)."""
    import av

    samples_, rate = media.read_audio(talking_face.video_path)
    with av.open(str(talking_face.video_path)) as src, av.open(str(path), "w", format="mp4") as out:
        v_out = out.add_stream_from_template(src.streams.video[0])
        a_out = out.add_stream("aac", rate=rate, layout="stereo")
        for p in src.demux(src.streams.video[0]):
            if p.size:
                p.stream = v_out
                out.mux(p)
        start = int(round(audio_start_s * rate))
        for i in range(0, len(samples_), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples_[i : i + 1024].T), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, start + i
            for p in a_out.encode(frame):
                out.mux(p)
        for p in a_out.encode(None):
            out.mux(p)
    return path


def test_a_late_audio_stream_start_is_named_with_its_size(talking_face, tmp_path):
    info = media.probe(_with_late_audio(talking_face, tmp_path / "late.mp4", 0.2))
    found = {f.name: f for f in stream_findings(info)}
    assert "stream_start_offset" in found and found["stream_start_offset"].severity == "problem"
    assert found["stream_start_offset"].value == pytest.approx(0.2, abs=0.05)


def test_aac_priming_ahead_of_the_picture_is_not_called_a_shift(talking_face, tmp_path):
    # lipdub writes MP4 as FFmpeg's avoid_negative_ts make_zero does: the AAC stream then
    # starts one priming frame (1024 samples) before the first picture, its sound on it
    audio, rate = media.read_audio(talking_face.video_path)
    out = tmp_path / "written.mp4"
    media.remux_with_audio(talking_face.video_path, audio, rate, out)
    info = media.probe(out)
    assert info.audio.start_time_s - info.video.start_time_s == pytest.approx(-1024 / rate, abs=0.002)
    found = {f.name: f for f in stream_findings(info)}
    assert "stream_start_offset" not in found
    assert found["encoder_priming"].severity == "info"


def test_retiming_makes_a_vfr_clip_constant_rate_at_its_real_rate(tmp_path):
    from tests.test_media import _write_vfr

    src = media.probe(_write_vfr(tmp_path / "vfr.mp4", 60, 3)).video
    out = tmp_path / "cfr.mp4"
    media.remux_with_audio(tmp_path / "vfr.mp4", np.zeros((48000 * 3, 1), np.float32), 48000, out, media.fps_fraction(src.actual_fps))
    fixed = media.probe(out)
    assert fixed.video.n_frames == src.n_frames
    assert np.ptp(np.diff(fixed.video.frame_times_s)) < 1e-3  # constant frame rate
    assert fixed.video.actual_fps == pytest.approx(src.actual_fps, rel=0.01)
    assert "vfr" not in {f.name for f in stream_findings(fixed)}


def test_time_stretch_keeps_pitch_and_changes_length():
    rate = 16000
    tone = np.sin(2 * np.pi * 220 * np.arange(rate * 2) / rate).astype(np.float32)[:, None]
    faster = media.time_stretch(tone, rate, 1.05)
    assert len(faster) / rate == pytest.approx(2 / 1.05, abs=0.03)
    spectrum = np.abs(np.fft.rfft(faster[:, 0]))
    assert np.fft.rfftfreq(len(faster), 1 / rate)[spectrum.argmax()] == pytest.approx(220, abs=3)
    # stereo stays stereo, each channel its own (the filter may hand back interleaved samples)
    other = np.sin(2 * np.pi * 330 * np.arange(rate * 2) / rate).astype(np.float32)[:, None]
    both = media.time_stretch(np.concatenate([tone, other], axis=1), rate, 1.05)
    assert both.shape[1] == 2 and len(both) == pytest.approx(len(faster), abs=rate // 100)
    for ch, hz in ((0, 220), (1, 330)):
        peak = np.fft.rfftfreq(len(both), 1 / rate)[np.abs(np.fft.rfft(both[:, ch])).argmax()]
        assert peak == pytest.approx(hz, abs=3)


def test_a_window_whose_best_lag_is_the_end_of_the_range_gives_no_reading(shifted_clips):
    """With lags searched only to +-3 frames, a clip 6 frames late peaks at the range's end
    in every window: that is no peak, so no window offset is reported (before, each read +3)."""
    from lipdub.infra.config import DriftConfig
    from lipdub.tasks.drift import measure_file

    video = shifted_clips[6].video_path
    clip = _doctor(video, shifted_clips[6].video_path.parent / "edge-work")
    narrow = DriftConfig(max_lag_frames=3)
    result, _ = measure_file(video, None, clip.layout.artifact("stabilize", "landmarks.npz"), narrow, 16000)
    assert result.windows == []
    wide, _ = measure_file(video, None, clip.layout.artifact("stabilize", "landmarks.npz"), DriftConfig(), 16000)
    assert wide.windows and all(abs(w.offset_frames - 6) <= 2.5 for w in wide.windows)


def test_a_whole_clip_whose_best_lag_is_the_end_of_the_range_cannot_tell(shifted_clips):
    """The same rule for the whole clip: a curve still rising at +-3 frames for a clip 6
    frames late has no peak inside the range (at most a bump), so no offset is claimed
    (before, it read +3: constant_offset, noticeable)."""
    from lipdub.infra.config import DriftConfig
    from lipdub.tasks.drift import measure_file

    video = shifted_clips[6].video_path
    landmarks = _doctor(video, video.parent / "edge-clip-work").layout.artifact("stabilize", "landmarks.npz")
    narrow, _ = measure_file(video, None, landmarks, DriftConfig(max_lag_frames=3), 16000)
    assert (narrow.sync_class, narrow.verdict) == ("cannot_tell", "unknown")


def test_an_offset_within_the_fine_tolerance_is_in_sync(shifted_clips):
    """The class follows the tolerance: a reading no viewer notices is not a constant offset."""
    from lipdub.infra.config import DriftConfig
    from lipdub.tasks.drift import measure_file

    video = shifted_clips[6].video_path
    landmarks = _doctor(video, video.parent / "tolerance-work").layout.artifact("stabilize", "landmarks.npz")
    strict, _ = measure_file(video, None, landmarks, DriftConfig(), 16000)
    lenient, _ = measure_file(video, None, landmarks, DriftConfig(fine_frames=9, noticeable_frames=12), 16000)
    assert strict.offset_frames == lenient.offset_frames and 3 < strict.offset_frames < 9
    assert (strict.sync_class, strict.verdict) == ("constant_offset", "noticeable" if strict.offset_frames <= 5 else "unacceptable")
    assert (lenient.sync_class, lenient.verdict) == ("in_sync", "fine")


def test_fix_stretches_a_drifting_dub_back_into_sync(tmp_path):
    """Audio 1 % slow: the repair speeds it up by the fitted rate, slides it by the fitted
    offset at the start, and the result measures in sync."""
    video = samples.make_talking_face(tmp_path / "drift.mp4", duration_s=24.0, seed=9, audio_stretch=1.01).video_path
    clip = _doctor(video, tmp_path / "w", tmp_path / "fixed.mp4")
    rec = clip.records["repair"]
    assert any("stretch audio" in step for step in rec.steps)
    assert rec.after.sync_class == "in_sync" and abs(rec.after.offset_frames) <= 1.5
    assert clip.records["sync_analysis"].sync.offset_at_zero_frames == pytest.approx(0.0, abs=1.5)


def test_the_offset_is_the_middle_of_a_plateau_not_its_noisy_top():
    """A score curve flat from -0.5 to +3.5 frames (map-man's shape) whose highest point,
    by noise, is at one end: the offset is the plateau's middle, wherever the noise puts the top."""
    lags = np.arange(-15, 15.25, 0.5)
    plateau = np.clip(0.45 - 0.15 * np.maximum(np.abs(lags - 1.5) - 2.0, 0), -0.2, None)
    for top in (-0.5, 3.5, 1.0):
        scores = plateau + np.where(lags == top, 0.01, 0.0)
        assert scores.argmax() == np.flatnonzero(lags == top)[0]
        assert _peak(scores, lags) == pytest.approx(1.5, abs=0.05)


def test_a_window_reads_the_peak_the_whole_clip_reads_not_a_far_one():
    """A window's curve that rises and falls with the syllables: its highest point is a hump
    11 frames off, the whole clip reads 0. The window reads the middle of the hump the clip's
    reading lies on (a copy of glasses-woman: -13 in its one window, +3.3 for the clip)."""
    lags = np.arange(-15, 15.25, 0.5)
    curve = 0.62 * np.exp(-0.5 * (lags / 2.0) ** 2) + 0.64 * np.exp(-0.5 * ((lags + 11) / 2.0) ** 2)
    assert lags[curve.argmax()] == -11
    offset, score = _window_peak(curve, lags, expected=0.8)
    assert offset == pytest.approx(0.0, abs=0.1) and score == pytest.approx(0.62, abs=0.01)
    # a drift moves the window along its peak, not to the far hump
    assert _window_peak(np.roll(curve, 4), lags, expected=3.0)[0] == pytest.approx(2.0, abs=0.1)
    # the peak's top at the range's end is no peak inside the range
    assert _window_peak(np.linspace(0.0, 0.5, len(lags)), lags, expected=0.0) is None
    # with no clip reading to go by, the highest peak
    assert _window_peak(curve, lags, expected=None)[0] == pytest.approx(-11.0, abs=0.1)


@pytest.mark.parametrize(("offset", "sync_class", "slid"), [(1.8, "in_sync", True), (-4.0, "constant_offset", True), (0.6, "in_sync", False), (float("nan"), "cannot_tell", False)])
def test_fix_slides_any_offset_above_a_frame(offset, sync_class, slid):
    """Within the fine tolerance a viewer may not notice 1.8 frames, but a repair aims at 0;
    what reads within a frame, or cannot be read, is left alone."""
    result = SyncResult(offset, 0.2, float("nan"), sync_class, "fine", "", [])
    plan = plan_audio(result, 25.0, RepairPlan(), slide_above_frames=1.0)
    assert plan.delay_s == (pytest.approx(-offset / 25.0) if slid else 0.0)
    assert bool(plan.steps) == slid


def test_padding_a_slid_track_with_digital_silence_adds_no_evidence(in_sync_signals):
    """Sliding a track earlier pads its end with zeros; lips that line up with that padding
    at some lag are not evidence (a slid real clip read +11 frames off such a peak). The
    slid track reads exactly as the same track cut where its padding starts."""
    from lipdub.sync import measure_sync

    lips, valid, times, audio = in_sync_signals
    slid = media.shift_audio(audio[:, None], 16000, -4 / 25)[:, 0]
    cut = slid[: len(slid) - int(round(4 / 25 * 16000))]
    padded, plain = (measure_sync(lips, valid, a, 16000, times, 25.0) for a in (slid, cut))
    assert padded.offset_frames == pytest.approx(-3.5, abs=1.5)
    assert padded.offset_frames == pytest.approx(plain.offset_frames, abs=1e-3)
    assert padded.confidence == pytest.approx(plain.confidence, abs=1e-3)


def test_the_rate_search_finds_a_drift_wherever_its_mid_clip_lag_lies():
    """A 40 s clip whose audio runs 0.5 % fast from 1 frame late: its score surface peaks at
    that rate and start lag. Every mid-clip lag in the range is tried, so the search does not
    hinge on where the no-drift curve peaks (a stretched map-man's peaked 8 frames away)."""
    times = np.arange(1000) / 25.0

    def score_at(lag: float, rate: float) -> np.ndarray:
        true = 0.35 * np.exp(-(((lag - 1.0) / 2.0) ** 2) - ((rate + 0.005) / 0.001) ** 2)
        decoy = 0.30 * np.exp(-(((lag + 9.0 + rate * 500) / 2.0) ** 2))  # a no-drift bump far away
        return np.array([max(true, decoy)])

    rate, start_lag, top, _ = _rate_search(score_at, lambda rows: np.ones(1), times, 25.0, 15)
    assert rate == pytest.approx(-0.005, abs=2.5e-4)
    assert start_lag == pytest.approx(1.0, abs=0.5)  # to the frame; the caller reads the peak's middle
    assert top > 0.3


def test_a_drift_is_not_handed_to_the_slow_mode_its_smearing_spares():
    """Two modes of the mouth's motion, half the motion each. The fast one follows the sound
    only at the true rate (0.5 % fast) and lag, so on the no-drift curve it is smeared to
    nothing; the slow one follows it broadly 8 frames early at any rate (map-man looped and
    stretched by 1 % has such a mode). Weighted by the no-drift curve alone, the slow mode
    takes all the weight and the search reads its decoy; weighted by how well each mode is
    predicted anywhere the search looked, it reads the true rate and lag."""
    times = np.arange(1000) / 25.0
    lags = np.arange(-15, 15.25, 0.5)
    shares = np.array([0.5, 0.5])

    def modes_at(lag: float, rate: float) -> np.ndarray:
        mid = lag + rate * 500
        true = np.exp(-(((lag - 1.0) / 2.0) ** 2) - ((rate + 0.005) / 0.001) ** 2)
        decoy = np.exp(-(((mid + 8.0) / 4.0) ** 2))
        return np.array([0.45 * true - 0.2 * decoy, 0.3 * true + 0.5 * decoy])

    no_drift = np.array([modes_at(lag, 0.0) for lag in lags])
    rate, start_lag, _, weights = _rate_search(modes_at, lambda rows: mode_weights(shares, np.vstack([no_drift, rows])), times, 25.0, 15)
    assert rate == pytest.approx(-0.005, abs=2.5e-4)
    assert start_lag == pytest.approx(1.0, abs=0.5)
    assert weights[0] > 0.3
    misled, _, _, _ = _rate_search(modes_at, lambda rows: mode_weights(shares, no_drift), times, 25.0, 15)
    assert abs(misled + 0.005) > 5e-4


def test_lags_around_the_peak_are_compared_on_the_same_frames():
    """Audio late by 0 frames, but lag L can only use frames from 20 L on, and the first 40
    frames are hard to predict: later lags drop hard frames and score higher for it, which
    pulls the plain curve's peak late. Scored on the frames all nearby lags share, it is 0."""
    rng = np.random.default_rng(0)
    n = 1000
    lags = np.arange(-15, 15.25, 0.5)
    y = rng.standard_normal((n, 1))
    hard = np.where(np.arange(n) < 40, 6.0, 0.3)
    preds = np.stack([y * np.exp(-((lag / 3.0) ** 2)) + hard[:, None] * rng.standard_normal((n, 1)) for lag in lags])
    counted = np.stack([np.arange(n) >= max(0.0, 20 * lag) for lag in lags])

    def mode_r(p, idx):
        return np.array([np.corrcoef(p[idx, 0], y[idx, 0])[0, 1]])

    def score_over(idx):
        return np.array([mode_r(p, idx[c[idx]])[0] for p, c in zip(preds, counted)])

    scores = score_over(np.arange(n))
    best = int(scores.argmax())
    assert _peak(scores, lags, best) > 0.75  # the plain curve is pulled late
    assert _peak_on_shared_frames(scores, lags, best, counted, score_over, 25.0) == pytest.approx(0.0, abs=0.25)


def test_rescoring_on_shared_frames_stays_on_the_peak_it_was_asked_about():
    """The whole-clip curve peaks at -1.5 frames. On the frames the nearby lags share, a
    second hump a syllable away (+3.5) comes out a little higher (lipdub's anchor-man x
    en-male-5s dub read +3.2 for it). The rescoring places the first peak; it does not
    trade it for the other."""
    lags = np.arange(-15, 15.25, 0.5)

    def hump(at, height):
        return height * np.exp(-(((lags - at) / 1.2) ** 2))

    scores = hump(-1.5, 0.36) + hump(3.5, 0.2)
    rescored = hump(-1.5, 0.35) + hump(3.5, 0.37)
    counted = np.ones((len(lags), 200), bool)
    best = int(scores.argmax())
    assert rescored.argmax() != best
    assert _peak_on_shared_frames(scores, lags, best, counted, lambda idx: rescored, 25.0) == pytest.approx(-1.5, abs=0.3)


def test_the_rate_is_found_between_grid_steps_on_a_long_clip():
    """A 10 min clip whose audio runs 0.237 % slow: the nearest 0.1 % grid rate would leave
    up to 7 frames of drift at the end after a repair; the search lands within a frame."""
    times = np.arange(15000) / 25.0
    span_frames = 15000

    def score_at(lag: float, rate: float) -> np.ndarray:
        mid_lag = lag + rate * 300.0 * 25.0
        return np.array([0.3 * np.exp(-(((mid_lag - 2.0) / 2.0) ** 2) - ((rate - 0.00237) * span_frames) ** 2)])

    rate, start_lag, _, _ = _rate_search(score_at, lambda rows: np.ones(1), times, 25.0, 15)
    assert abs(rate - 0.00237) * span_frames <= 1.0
    assert start_lag + rate * 300.0 * 25.0 == pytest.approx(2.0, abs=1.0)


def test_a_reading_on_weak_evidence_says_so(in_sync_signals):
    """Lips that are mostly (85 %) those of a random other frame are poorly predicted by the
    sound: the reading stands, but its reason says the evidence is weak. The untouched
    clip's reading carries no such note."""
    from lipdub.sync import measure_sync

    lips, valid, times, audio = in_sync_signals
    mixed = 0.15 * lips + 0.85 * lips[np.random.default_rng(0).permutation(len(lips))]
    clear, weak = (measure_sync(x, valid, audio, 16000, times, 25.0) for x in (lips, mixed))
    assert clear.reason == ""
    assert weak.sync_class != "cannot_tell" and weak.confidence < clear.confidence
    assert weak.reason.startswith("weak evidence")


def test_a_looped_picture_is_named_with_its_period(in_sync_signals):
    """The clip played three times over repeats its mouth motion every 6 s: a loop, on
    which the sync reading can lock onto a wrong lag, is named with its period. The clip
    itself, and a still mouth, are not loops."""
    from lipdub.doctor.findings import repeat_findings

    lips, valid, _, _ = in_sync_signals
    noisy = np.tile(lips, (3, 1, 1)) + np.random.default_rng(1).normal(0, 0.2, (3 * len(lips), *lips.shape[1:]))
    (loop,) = repeat_findings(noisy, np.tile(valid, 3), 25.0)
    assert loop.name == "looped_picture" and loop.value == pytest.approx(len(lips) / 25.0, abs=0.05)
    assert repeat_findings(lips, valid, 25.0) == []
    assert repeat_findings(np.repeat(lips[:1], 300, axis=0), np.ones(300, bool), 25.0) == []


def test_a_clear_drift_is_not_called_weak_evidence(tmp_path):
    """2 % over 24 s: the drift fitted on the whole clip predicts the lips well, so no
    weak-evidence note, whatever the no-drift curve's confidence."""
    video = samples.make_talking_face(tmp_path / "drift.mp4", duration_s=24.0, seed=9, audio_stretch=1.02).video_path
    sync = _doctor(video, tmp_path / "w").records["sync_analysis"].sync
    assert sync.sync_class == "growing_drift"
    assert sync.reason == ""


def test_slow_mouth_motion_is_taken_out_before_the_fit():
    """A mouth that widens slowly (a smile over 3 s) while it opens and shuts with the
    syllables (4 a second): what the sync fit sees is the syllables alone. A frame without
    landmarks (garbage where the face was lost) neither leaks into its neighbours nor is
    changed."""
    from lipdub.sync import without_slow_motion

    t = np.arange(250) / 25.0
    syllables, smile = np.sin(2 * np.pi * 4 * t), 3.0 * np.sin(2 * np.pi * t / 6)
    valid = np.ones(250, bool)
    valid[100] = False
    feats = np.stack([syllables + smile, smile], axis=1)
    feats[100] = 1e6
    out = without_slow_motion(feats, valid, 13)
    assert np.corrcoef(out[valid, 0], syllables[valid])[0, 1] > 0.97
    assert np.sqrt(np.mean(out[valid, 1] ** 2)) < 0.05 * np.sqrt(np.mean(smile**2))  # the ends keep a little of it
    assert np.abs(out[valid]).max() < 2.0 and np.array_equal(out[100], feats[100])


def test_a_sound_that_fits_two_offsets_about_as_well_says_so(in_sync_signals):
    """Lips that are half the clip's own and half its own 12 frames later: the sound
    predicts them about as well near 0 and near -12, and which one the reading takes is
    chance. The reading stands, and its reason names both (the clip's own lips: no note,
    test_a_reading_on_weak_evidence_says_so)."""
    import re

    from lipdub.sync import measure_sync

    lips, valid, times, audio = in_sync_signals
    both = 0.5 * lips + 0.5 * np.roll(lips, 12, axis=0)
    reading = measure_sync(both, valid & np.roll(valid, 12), audio, 16000, times, 25.0)
    assert reading.reason.startswith("two offsets fit the sound about as well")
    named = sorted(float(x) for x in re.findall(r"[-+]\d+\.\d", reading.reason))
    assert len(named) == 2 and -14 <= named[0] <= -8 and abs(named[1]) <= 2
