"""Face-mesh landmark groups and the canonical face space that every later stage works in.

Canonical space: a square image of side S in which the eye corners of the clip's mean
face sit level at fixed places, so a mouth from any frame lines up with any other.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import SimilarityTransform

# MediaPipe face-mesh indices
LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
LIPS_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]
LIPS = LIPS_OUTER + LIPS_INNER
JAW = [132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361]
CHIN = JAW.index(152)
NOSE_BASE = [98, 97, 2, 326, 327]
# Points that move with the skull, not with the mouth or eyelids.
STABLE = [33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 234, 454, 127, 356, 10, 151, 9]
EYE_OUTER_L, EYE_OUTER_R = 33, 263
UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
NOSE_TIP, CHEEK_L, CHEEK_R = 1, 234, 454
# Cheekbones and the face's sides: after the alignment on STABLE, where they sit says how
# the head is pitched and turned. Not the nose: its base moves with the upper lip, and even
# its ridge follows the mouth in the face mesh; mouths moved by the nose base sat higher
# or lower with the words the source was filmed saying (their height against the source's
# own opening |r| 0.29 over 30 dubs; by these points 0.12, where unmoved mouths read 0.10)
POSE_POINTS = [116, 345, 123, 352, 234, 454]

EYE_Y, EYE_SPAN = 0.36, 0.40  # canonical eye line height and outer-corner distance, as fractions of S


def canonical_template(stable_points: np.ndarray, size: int) -> np.ndarray:
    """Mean stable-point shape of the clip (frames x points x 2), placed in canonical space."""
    valid = stable_points[~np.isnan(stable_points[:, 0, 0])]
    ref = valid[len(valid) // 2]
    aligned = []
    for pts in valid[:: max(1, len(valid) // 60)]:
        aligned.append(_estimate(pts, ref)(pts))
    mean = np.mean(aligned, axis=0)
    l, r = mean[STABLE.index(EYE_OUTER_L)], mean[STABLE.index(EYE_OUTER_R)]
    src = np.array([l, r])
    dst = np.array([[0.5 - EYE_SPAN / 2, EYE_Y], [0.5 + EYE_SPAN / 2, EYE_Y]]) * size
    return _estimate(src, dst)(mean)


def _estimate(src: np.ndarray, dst: np.ndarray) -> SimilarityTransform:
    return SimilarityTransform.from_estimate(src, dst)


def to_canonical(stable: np.ndarray, template: np.ndarray) -> np.ndarray:
    """2x3 matrix mapping frame pixels to canonical pixels for one frame's stable points."""
    return _estimate(stable, template).params[:2].astype(np.float32)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def canonical_points(landmarks: np.ndarray, to_canonical: np.ndarray, index: list[int]) -> np.ndarray:
    """(n, len(index), 2) the chosen landmarks of every frame in its canonical face (NaN where none)."""
    pts = landmarks[:, index, :2]
    return np.einsum("nij,nkj->nki", to_canonical[:, :, :2], pts) + to_canonical[:, None, :, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([matrix, [0, 0, 1]])
    return np.linalg.inv(full)[:2].astype(np.float32)


def yaw_deg(landmarks: np.ndarray) -> float:
    """Head turn from the nose tip's place between the cheeks (0 = frontal)."""
    left = np.linalg.norm(landmarks[NOSE_TIP, :2] - landmarks[CHEEK_L, :2])
    right = np.linalg.norm(landmarks[NOSE_TIP, :2] - landmarks[CHEEK_R, :2])
    ratio = (left - right) / max(left + right, 1e-6)
    return float(np.degrees(np.arcsin(np.clip(ratio, -1, 1))))


def mouth_box(size: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the lower-face box in canonical pixels (nose base to below the chin)."""
    return int(0.1 * size), int(0.5 * size), int(0.9 * size), size


def side_of_mouth_box(height: int) -> int:
    """The canonical side whose mouth box is `height` px tall: the box is the square's lower half."""
    return 2 * height


def auto_canonical_size(landmarks: np.ndarray, cap: int | None = None) -> int:
    """Canonical side that keeps the face at its frame resolution (no down-sampling blur),
    or at most `cap`: a lower processing resolution never enlarges a smaller face."""
    valid = landmarks[~np.isnan(landmarks[:, 0, 0])]
    span = np.median(np.linalg.norm(valid[:, EYE_OUTER_L, :2] - valid[:, EYE_OUTER_R, :2], axis=1))
    own = int(np.clip(round(span / EYE_SPAN / 16) * 16, 128, 512))
    return own if cap is None else min(own, cap)


def mask_jaw(target_jaw: np.ndarray, mouth_jaw: np.ndarray) -> np.ndarray:
    """The jaw outline a mask must cover: the narrower of the two faces' sides, the lower chin.

    The mouth's frame may show the head turned or shifted; where its cheek ends sooner
    than the target's, the pixels beyond are its background, so the sides come from
    whichever face is narrower there. The lower chin keeps a more open mouth's chin
    from being cut off.
    """
    centre = target_jaw[:, 0].mean()
    inner = np.abs(target_jaw[:, 0] - centre) <= np.abs(mouth_jaw[:, 0] - centre)
    sides = np.where(inner, target_jaw[:, 0], mouth_jaw[:, 0])
    return np.stack([sides, np.maximum(target_jaw[:, 1], mouth_jaw[:, 1])], axis=1)


def fitted_jaw(target_jaw: np.ndarray, mouth_jaw: np.ndarray) -> np.ndarray:
    """Where a pasted lower face's jaw should land on the target frame.

    Across, the target's own jaw everywhere (how the head is turned is the target's);
    down, the target's at the sides, the mouth's own at the chin, which drops and rises
    with the mouth's opening, and between the two smoothly. A mouth filmed with the head
    turned or tipped otherwise showed its own jaw line inside the mask a little way
    from the target's just outside it: a second jaw line."""
    off = np.clip((np.abs(np.arange(len(target_jaw)) - CHIN) - 1) / 4, 0, 1)
    down = off * off * (3 - 2 * off)
    return np.stack([target_jaw[:, 0], mouth_jaw[:, 1] + down * (target_jaw[:, 1] - mouth_jaw[:, 1])], axis=1)


def lower_face_mask(jaw: np.ndarray, nose_base: np.ndarray, size: int, feather_px: float) -> np.ndarray:
    """Feathered mask (float32 0..1) in the mouth box: from under the nose down around the jaw."""
    import cv2

    x0, y0, x1, y1 = mouth_box(size)
    top = nose_base[:, 1].max() + 0.015 * size
    pts = [np.array([[nose_base[:, 0].min() - 0.04 * size, top], [nose_base[:, 0].max() + 0.04 * size, top]])]
    below = jaw[jaw[:, 1] > top]
    pts.append(below + [0, 0.01 * size])
    hull = cv2.convexHull((np.concatenate(pts) - [x0, y0]).astype(np.float32))
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1.0)
    erode = max(1, int(feather_px))
    mask = cv2.erode(mask, np.ones((erode, erode), np.uint8))
    return cv2.GaussianBlur(mask, (0, 0), feather_px / 2)
