"""The blend mask covers the face the mouth lands on, never the background beside it."""

import numpy as np

from lipdub import face_geometry as fg


def _jaw(cx: float, chin_y: float, half_width: float) -> np.ndarray:
    angles = np.linspace(0, np.pi, len(fg.JAW))
    return np.stack([cx - half_width * np.cos(angles), 150 + (chin_y - 150) * np.sin(angles)], axis=1)


def test_mask_takes_the_narrower_sides_and_the_lower_chin():
    target = _jaw(128, 230, 60)
    mouth = _jaw(128, 240, 45)  # a head turned (narrower in the picture) with the mouth more open
    jaw = fg.mask_jaw(target, mouth)
    assert np.allclose(jaw[:, 0], mouth[:, 0])
    assert jaw[:, 1].max() == 240
    wide = fg.mask_jaw(target, _jaw(128, 220, 75))
    assert np.allclose(wide[:, 0], target[:, 0]) and wide[:, 1].max() == 230


def test_mask_stays_inside_the_target_face_sides():
    size = 256
    target = _jaw(128, 230, 60)
    mouth = _jaw(170, 232, 60)
    nose = np.array([[115, 150], [120, 152], [128, 154], [136, 152], [141, 150]], np.float32)
    mask = fg.lower_face_mask(fg.mask_jaw(target, mouth), nose, size, 9.0)
    x0, _, _, _ = fg.mouth_box(size)
    cols = np.flatnonzero(mask.max(axis=0) > 0.01) + x0
    assert cols.min() >= 128 - 60 - 9 and cols.max() <= 128 + 60 + 9
    assert mask.max() > 0.99


def test_a_pasted_jaw_lands_on_the_targets_sides_and_keeps_its_own_chin_height():
    target = _jaw(128, 230, 60)
    mouth = _jaw(140, 215, 52)  # filmed with the head turned, the mouth closed: the chin higher
    landed = fg.fitted_jaw(target, mouth)
    assert np.allclose(landed[:, 0], target[:, 0])  # across, where the target's head puts it
    sides = [0, 1, 2, 3, 13, 14, 15, 16]
    assert np.allclose(landed[sides, 1], target[sides, 1])
    assert landed[fg.CHIN, 1] == mouth[fg.CHIN, 1]  # the chin rises with the closed mouth
    assert np.all(np.diff(landed[: fg.CHIN + 1, 1]) >= -1e-6)  # down the side to the chin, no kink back up
