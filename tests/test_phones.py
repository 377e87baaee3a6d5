"""Phone timings: which output frames a /p b m/ covers, and the recogniser on real audio."""

from __future__ import annotations

import numpy as np

from lipdub import phones, samples


def test_closure_frames_cover_the_phone_or_its_nearest_frame():
    times = np.arange(50) / 25.0  # 40 ms frames
    found = [phones.Phone("B", 0.39, 0.50), phones.Phone("AA", 0.50, 0.70), phones.Phone("M", 1.005, 1.025), phones.Phone("P", 3.5, 3.6)]
    closed = phones.closure_frames(found, times, 0.04)
    assert np.flatnonzero(closed).tolist() == [10, 11, 12, 25]  # B: 0.40..0.48; M is shorter than a frame: 1.00; P is past the end


def test_phone_loop_reads_speech_and_finds_nothing_in_silence(tmp_path):
    rate = 16000
    envelope = samples.speech_envelope(3.0, 25.0, seed=3)
    speech = samples.write_wav(tmp_path / "speech.wav", samples.synth_speech(envelope, 25.0, rate, seed=3, f0_hz=140.0), rate)
    silence = samples.write_wav(tmp_path / "silence.wav", np.zeros((rate * 2, 1), np.float32), rate)
    heard = phones.phone_loop(speech)
    assert heard and all(0 <= p.start_s < p.end_s <= 3.05 for p in heard)
    assert all(a.end_s <= b.start_s + 1e-6 for a, b in zip(heard, heard[1:]))  # in order, no overlaps
    assert {p.name for p in heard} - {"SIL"}  # the synthetic voice is heard as phones
    assert not [p for p in phones.phone_loop(silence) if p.name in phones.BILABIALS]
    assert phones.aligned_phones(silence) == []
