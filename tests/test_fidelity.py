"""blend's CRF choice: grainy footage gets a lower CRF so what lies outside the mouth keeps the target PSNR."""

from fractions import Fraction

import numpy as np
import pytest

from lipdub import media
from lipdub.infra.config import BlendConfig
from lipdub.tasks.blend import choose_crf

FPS = Fraction(25)


def _footage(path, grain: float, n: int = 30, size: int = 128):
    """A slowly panning gradient with `grain` (std of fresh noise per frame, in levels), encoded losslessly."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:size, :size].astype(np.float32)
    with media.SegmentWriter(path, size, size, FPS, crf=0) as writer:
        for i in range(n):
            base = 110 + 60 * np.sin((x + 2 * i) / 23.0) * np.cos(y / 31.0)
            rgb = np.stack([base, base * 0.8 + 20, base * 0.6 + 40], axis=2) + rng.normal(0, grain, (size, size, 1))
            writer.write(np.clip(rgb, 0, 255).astype(np.uint8))
    return path, media.probe(path).video


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return _footage(tmp_path_factory.mktemp("fidelity") / "clean.mp4", grain=0.0)


@pytest.fixture(scope="module")
def grainy(tmp_path_factory):
    return _footage(tmp_path_factory.mktemp("fidelity") / "grainy.mp4", grain=3.0)


def test_footage_that_keeps_the_target_at_the_configured_crf_keeps_that_crf(clean, tmp_path):
    path, stream = clean
    frames = [f for _, f in media.read_frames(path, stream, planes=True)]
    at_18 = media.transcode_psnr_db(frames, FPS, 18, "veryfast", tmp_path)
    crf, psnr = choose_crf(path, stream, FPS, BlendConfig(fidelity_db=at_18 - 0.1, fidelity_frames=len(frames)), tmp_path)
    assert (crf, psnr) == (18, at_18)


def test_grainy_footage_gets_the_highest_crf_that_keeps_the_target(grainy, tmp_path):
    path, stream = grainy
    frames = [f for _, f in media.read_frames(path, stream, planes=True)]
    target = 40.0
    assert media.transcode_psnr_db(frames, FPS, 18, "veryfast", tmp_path) < target  # the premise: CRF 18 loses too much here
    crf, psnr = choose_crf(path, stream, FPS, BlendConfig(fidelity_db=target, fidelity_frames=len(frames)), tmp_path)
    assert 10 <= crf < 18 and psnr >= target
    assert media.transcode_psnr_db(frames, FPS, crf + 1, "veryfast", tmp_path) < target  # one step coarser would not keep it
    assert list(tmp_path.iterdir()) == []  # trial encodes leave nothing behind


def test_a_target_no_crf_reaches_gives_the_lowest_allowed(grainy, tmp_path):
    crf, psnr = choose_crf(*grainy, FPS, BlendConfig(fidelity_db=90.0, min_crf=12), tmp_path)
    assert crf == 12 and psnr < 90.0


def test_without_a_fidelity_target_the_crf_is_the_configured_one(grainy, tmp_path):
    assert choose_crf(*grainy, FPS, BlendConfig(fidelity_db=None, crf=20), tmp_path) == (20, None)


def test_a_choice_kept_in_a_memo_is_reused_without_a_trial_and_a_new_setting_trials_again(grainy, tmp_path, monkeypatch):
    from lipdub.tasks.blend import crf_memo_name

    path, stream = grainy
    cfg = BlendConfig(fidelity_db=40.0, fidelity_frames=30)
    trials = []
    real = media.transcode_psnr_db
    monkeypatch.setattr(media, "transcode_psnr_db", lambda *a, **k: trials.append(a[2]) or real(*a, **k))
    memo = tmp_path / "sources" / crf_memo_name(cfg, FPS)
    first = choose_crf(path, stream, FPS, cfg, tmp_path, memo)
    assert trials and memo.is_file()
    n = len(trials)
    assert choose_crf(path, stream, FPS, cfg, tmp_path, memo) == first and len(trials) == n  # another dub of the same video
    stricter = cfg.model_copy(update={"fidelity_db": 44.0})
    assert crf_memo_name(stricter, FPS) != memo.name
    assert choose_crf(path, stream, FPS, stricter, tmp_path, tmp_path / "sources" / crf_memo_name(stricter, FPS))[0] < first[0]
    assert len(trials) > n
