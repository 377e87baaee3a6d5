"""Opening and closing a photo's mouth by warping (lipdub.mouth_warp): the shapes a viewer reads."""

import numpy as np

from lipdub import mouth_warp as mw

SKIN, UPPER_LIP, LOWER_LIP, INSIDE = (200, 150, 130), (180, 60, 60), (200, 120, 160), (30, 10, 10)
CX, LINE, HALF = 100, 50, 40  # mouth centre column, corners' row, half the mouth's width


def _lips(upper_arch: float, lower_drop: float) -> np.ndarray:
    """40 lip points in lipdub's order: corners on row LINE, the inner lips `upper_arch` px above
    and `lower_drop` px below it in the middle, tapering to the corners."""
    lips = np.zeros((40, 2), np.float32)
    lips[list(mw.CORNERS)] = [(CX - HALF, LINE), (CX + HALF, LINE)]
    lips[20], lips[30] = (CX - HALF, LINE), (CX + HALF, LINE)  # the inner corners
    xs = np.linspace(CX - HALF + 4, CX + HALF - 4, 9)
    bulge = 1 - ((xs - CX) / HALF) ** 2
    lips[mw.LOWER_INNER] = np.c_[xs, LINE + lower_drop * bulge]
    lips[mw.UPPER_INNER] = np.c_[xs, LINE - upper_arch * bulge]
    return lips


def _face(lips: np.ndarray) -> np.ndarray:
    """Skin, an upper and a lower lip 8 px thick along the inner edges, the mouth's inside between."""
    img = np.zeros((120, 200, 3), np.uint8)
    img[:] = SKIN
    cols = np.arange(200)
    top = np.interp(cols, lips[mw.UPPER_INNER, 0], lips[mw.UPPER_INNER, 1])
    bottom = np.interp(cols, lips[mw.LOWER_INNER, 0], lips[mw.LOWER_INNER, 1])
    rows = np.arange(120)[:, None]
    in_mouth = (np.abs(cols - CX) < HALF)[None, :]
    img[(rows >= top - 8) & (rows < top) & in_mouth] = UPPER_LIP
    img[(rows >= top) & (rows < bottom) & in_mouth] = INSIDE
    img[(rows >= bottom) & (rows < bottom + 8) & in_mouth] = LOWER_LIP
    return img


def _lower_lip_top(img: np.ndarray, col: int) -> int:
    """The first row of a column in the lower lip's colour: where the opened lips' gap ends."""
    return int(np.flatnonzero(np.abs(img[:, col].astype(int) - LOWER_LIP).sum(axis=1) < 40)[0])


def test_an_opened_mouth_parts_in_the_middle_and_stays_shut_at_the_corners():
    lips = _lips(0, 0)
    opening = 0.2 * 2 * HALF
    opened = mw.open_mouth(_face(lips), lips, opening)
    drop = {dx: _lower_lip_top(opened, CX + dx) - LINE for dx in (0, -int(0.9 * HALF), int(0.9 * HALF))}
    assert drop[0] >= 0.8 * opening  # the middle opens as far as asked
    # a lens, not a slot with blunt ends (the lower lip dropped 2/3 as far there when the
    # lips parted over a span half as wide again as the mouth)
    assert max(drop[-int(0.9 * HALF)], drop[int(0.9 * HALF)]) <= 0.5 * drop[0]


def test_closed_lips_meet_near_the_corners_line_not_along_the_upper_lips_arch():
    lips = _lips(upper_arch=8, lower_drop=16)
    closed = mw.raise_jaw(_face(lips), lips, 1.0)
    inside = np.abs(closed[:, CX - 15:CX + 16].astype(int) - INSIDE).sum(axis=2) < 90
    assert inside.sum(axis=0).max() <= 1  # the lips meet in the middle: a crease at most, no gap
    lower = np.abs(closed[:, CX].astype(int) - LOWER_LIP).sum(axis=1) < 40
    meet = int(np.flatnonzero(lower)[0])  # the lower lip's top edge in the middle
    # meeting where the upper lip came down 15 % of the gap would put the middle 4.4 px
    # above the corners: a closed mouth arched like a frown
    assert abs(meet - LINE) <= 0.35 * 8


def _with_outer_lips(lips: np.ndarray, thickness: float = 8) -> np.ndarray:
    """`lips` with the outer contour `thickness` px beyond the inner one, as _face draws it."""
    lips = lips.copy()
    lips[1:10] = lips[mw.LOWER_INNER] + [0, thickness]
    lips[11:20] = lips[mw.UPPER_INNER] - [0, thickness]
    return lips


def test_a_reshaped_mouth_opens_as_far_as_asked_and_leaves_the_upper_lip_and_far_skin_alone():
    filmed = _with_outer_lips(_lips(upper_arch=4, lower_drop=6))
    asked = _with_outer_lips(_lips(upper_arch=4, lower_drop=12))  # the lower lip 6 px lower in the middle
    face = _face(filmed)
    out = mw.reshape_lips(face, filmed, asked)
    assert abs(_lower_lip_top(out, CX) - (LINE + 12)) <= 1
    inside = np.flatnonzero(np.abs(out[:, CX].astype(int) - INSIDE).sum(axis=1) < 40)
    assert int(inside[0]) == LINE - 4  # the upper lip stays where it was (one field over both lips pulled it 1 px down)
    lower = np.flatnonzero(np.abs(out[:, CX].astype(int) - LOWER_LIP).sum(axis=1) < 40)
    assert 6 <= len(lower) <= 10  # the lower lip moves whole, not stretched
    assert (out[:10] == face[:10]).all() and (out[:, :20] == face[:, :20]).all()  # skin far from the mouth untouched


def test_a_mouth_already_shaped_as_asked_is_left_as_filmed():
    lips = _with_outer_lips(_lips(upper_arch=4, lower_drop=6))
    face = _face(lips)
    assert (mw.reshape_lips(face, lips, lips + 0.1) == face).all()


def _jawed_face(lips: np.ndarray, jaw: np.ndarray) -> np.ndarray:
    """_face on a 160 px tall patch, dark background beyond the jaw line (17 points, left to right, chin in the middle)."""
    img = np.zeros((160, 200, 3), np.uint8)
    img[:] = SKIN
    img[:120] = _face(lips)
    rows, cols = np.mgrid[0:160, 0:200]
    left = np.interp(rows, jaw[:9, 1], jaw[:9, 0])  # the left side, down to the chin
    right = np.interp(rows, jaw[8:, 1][::-1], jaw[8:, 0][::-1])
    img[(cols < left) | (cols > right) | (rows > jaw[:, 1].max())] = (20, 30, 40)
    return img


def _skin_edges(img: np.ndarray, row: int) -> tuple[int, int]:
    """The first and last column of skin on a row: where the face's sides are."""
    skin = np.flatnonzero(np.abs(img[row].astype(int) - SKIN).sum(axis=1) < 40)
    return int(skin.min()), int(skin.max())


def test_a_jaw_line_moved_to_the_targets_lands_there_and_the_lips_stay_as_filmed():
    lips = _with_outer_lips(_lips(upper_arch=4, lower_drop=6))
    angles = np.linspace(0, np.pi, 17)
    jaw = np.stack([CX - 80 * np.cos(angles), 30 + 110 * np.sin(angles)], axis=1).astype(np.float32)  # chin at row 140
    face = _jawed_face(lips, jaw)
    fitted = jaw.copy()
    fitted[12:, 0] += 6  # the target's right cheek 6 px further out
    out = mw.fit_jaw(face, jaw, fitted, lips)
    row = int(round(jaw[14, 1]))
    (left_before, right_before), (left_after, right_after) = _skin_edges(face, row), _skin_edges(out, row)
    assert abs(right_after - (right_before + 6)) <= 1.5
    assert left_after == left_before  # the left side was not asked to move
    x0, y0 = (lips.min(axis=0) - 2).astype(int)
    x1, y1 = (lips.max(axis=0) + 3).astype(int)
    assert (out[y0:y1, x0:x1] == face[y0:y1, x0:x1]).all()  # the lips, bit for bit
    assert (mw.fit_jaw(face, jaw, jaw + 0.1, lips) == face).all()  # a jaw already in place: nothing moves
