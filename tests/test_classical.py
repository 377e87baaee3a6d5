"""classical enhancer: colour matched to the target frame's light, not to how much lip it shows."""

import cv2
import numpy as np

from lipdub.models.classical import ClassicalEnhancer

SKIN, LIP = (205, 160, 140), (170, 60, 80)


def _mouth(lip_rows: int, light: float = 1.0) -> np.ndarray:
    """A 64 px patch of skin with a band of lip `lip_rows` tall, lit by `light`."""
    img = np.empty((64, 64, 3), np.float32)
    img[:] = SKIN
    img[32 - lip_rows // 2 : 32 + lip_rows // 2, 8:56] = LIP
    return np.clip(img * light, 0, 255).astype(np.uint8)


def _lip_a(img: np.ndarray) -> float:
    return float(cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[30:34, 20:44, 1].mean())


def test_a_mouth_showing_more_lip_than_its_target_keeps_the_lip_colour():
    source, target = _mouth(lip_rows=28), _mouth(lip_rows=10)  # open mouth pasted where the lips were thin
    out = ClassicalEnhancer(sharpen=0.0).enhance(source[None], target[None], np.ones((1, 64, 64), np.float32))[0]
    assert abs(_lip_a(out) - _lip_a(target)) <= 2.0  # the same lipstick, not a deeper red


def test_a_mouth_from_a_darker_frame_is_lit_like_its_target():
    source, target = _mouth(lip_rows=16, light=0.8), _mouth(lip_rows=16)
    out = ClassicalEnhancer(sharpen=0.0).enhance(source[None], target[None], np.ones((1, 64, 64), np.float32))[0]
    skin = (slice(2, 10), slice(2, 62))
    assert abs(float(out[skin].mean()) - float(target[skin].mean())) <= 3.0
    assert abs(float(source[skin].mean()) - float(target[skin].mean())) > 20.0  # the premise: they differed


def test_lips_from_a_frame_lit_at_another_angle_get_the_targets_lip_lightness():
    """Same skin, darker lips (the light fell differently on them): the skin's match says
    nothing is wrong, the lips' own statistics do."""
    source, target = _mouth(lip_rows=16), _mouth(lip_rows=16)
    source[32 - 8 : 32 + 8, 8:56] = (120, 30, 50)  # the same lipstick in shadow
    out = ClassicalEnhancer(sharpen=0.0).enhance(source[None], target[None], np.ones((1, 64, 64), np.float32))[0]
    lip = (slice(26, 38), slice(14, 50))

    def lightness(img):
        return float(cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[lip][..., 0].mean())

    assert lightness(target) - lightness(source) > 15  # the premise
    assert abs(lightness(out) - lightness(target)) <= 4.0
    skin = (slice(2, 10), slice(2, 62))
    assert abs(float(out[skin].mean()) - float(target[skin].mean())) <= 3.0  # the skin stays matched


def _lit_mouth(light_left: float, light_right: float, open_rows: int) -> np.ndarray:
    """A 128 x 256 lower face lit by a light that changes across it, lips in the middle,
    parted by `open_rows` rows of dark mouth."""
    img = np.empty((128, 256, 3), np.float32)
    img[:] = SKIN
    img[48:80, 80:176] = LIP
    img[64 - open_rows // 2 : 64 + open_rows // 2, 88:168] = (40, 20, 25)
    light = np.linspace(light_left, light_right, 256, dtype=np.float32)
    return np.clip(img * light[None, :, None], 0, 255).astype(np.uint8)


def test_a_mouth_lit_from_the_other_side_takes_the_targets_light_and_keeps_its_own_inside():
    """A face turned a little between two frames: the mouth's frame was lit from the right,
    the target's from the left. The light across the skin follows the target; the dark
    inside of the open mouth stays the mouth's own, not the target's closed lips."""
    source, target = _lit_mouth(0.7, 1.1, open_rows=16), _lit_mouth(1.1, 0.7, open_rows=0)
    region = np.ones((1, 128, 256), np.float32)
    left, right = (slice(10, 118), slice(4, 40)), (slice(10, 118), slice(216, 252))

    def side_gap(img: np.ndarray) -> float:
        return float(img[left].mean()) - float(img[right].mean())

    flat = ClassicalEnhancer(sharpen=0.0, shading=0.0).enhance(source[None], target[None], region)[0]
    lit = ClassicalEnhancer(sharpen=0.0, shading=0.05).enhance(source[None], target[None], region)[0]
    assert side_gap(target) > 40 and side_gap(flat) < -20  # the premise: one match for the whole region leaves the light reversed
    assert abs(side_gap(lit) - side_gap(target)) < 0.25 * side_gap(target)
    inside = (slice(60, 68), slice(100, 156))
    assert float(lit[inside].mean()) < 0.5 * float(target[inside].mean())  # still an open mouth
