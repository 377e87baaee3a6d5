"""classical: match each generated mouth's colour to the frame it lands on, restore detail.

Robust colour statistics (the median of each Lab channel, the spread of lightness)
ignore the mouth interior, which differs between an open and a closed mouth. The light
across the lower face (a cheek or the chin lit more in one frame than another) then
follows the target frame's, so a cut to a mouth filmed in other light does not change
the shading of the whole lower face. The lips then get their own lightness, as the
lower face's statistics are mostly skin and a mouth from a frame lit at another angle
keeps lips darker or lighter than its skin's match says; a light unsharp mask gives
back what two resampling warps take away.
"""

from __future__ import annotations

import cv2
import numpy as np

# the reddest pixels of the region are lip: this share of them (10 %) counts as lip, and
# a ramp of 15 percentiles below it blends the lip's lightness shift into the skin; only
# where that 10 % is clearly redder than the region's median (a*, 8-bit Lab): on pale
# lips (anchor-man 3, map-man 2 against 9-16 for the women's) the reddest pixels are as
# often skin, and map-man's mouths came out harder (sharpness 1.0 -> 1.3x) and less
# closed in silence. benchmarks/lip_colour.py measures it
LIP_PERCENTILE, LIP_RAMP, LIP_CONTRAST = 90.0, 15.0, 5.0
# a pixel whose lightness differs from the target's by this much more than the shading
# field says (8-bit Lab) is the mouth's own (lips, teeth, the inside), not the light on it
SHADING_OUTLIER = 6.0


class ClassicalEnhancer:
    name = "classical"

    # shading: the light's scale, a share of the patch's width. At 0.05 quality.py's
    # frame-to-frame change within 1.2x went from 23 to 28 of 30 dubs (anchor-man's six
    # 1.32-1.48x -> 1.12-1.24x: the light on his lower face differs from frame to frame);
    # at 0.02 the canonical mouths moved a little less still, but at a few px the "light"
    # carries the target frame's own folds and jaw line
    def __init__(self, sharpen: float = 0.4, match_lips: bool = True, shading: float = 0.05):
        self.sharpen = sharpen
        self.match_lips = match_lips
        self.shading = shading

    def enhance(self, mouths: np.ndarray, targets: np.ndarray, masks: np.ndarray) -> np.ndarray:
        out = np.empty_like(mouths)
        for i, (mouth, target, mask) in enumerate(zip(mouths, targets, masks)):
            out[i] = self._one(mouth, target, mask > 0.5)
        return out

    def _one(self, mouth: np.ndarray, target: np.ndarray, region: np.ndarray) -> np.ndarray:
        if region.sum() < 50:
            return mouth
        src = cv2.cvtColor(mouth, cv2.COLOR_RGB2LAB).astype(np.float32)
        ref = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
        sample = region[::2, ::2]  # statistics from every other pixel: same numbers, a quarter of the work
        s_q = np.percentile(src[::2, ::2][sample], [25, 50, 75], axis=0)
        r_q = np.percentile(ref[::2, ::2][sample], [25, 50, 75], axis=0)
        # lightness spread follows the light; the spread of a* and b* says how much lip the
        # region shows (its shape), so chroma only moves to the target's median
        gain = np.ones(3)
        gain[0] = np.clip((r_q[2, 0] - r_q[0, 0] + 1.0) / (s_q[2, 0] - s_q[0, 0] + 1.0), 0.8, 1.25)
        matched = (src - s_q[1]) * gain + r_q[1]
        if self.shading > 0:
            matched[..., 0] += _shading_shift(matched[..., 0], ref[..., 0], region, self.shading * mouth.shape[1])
        if self.match_lips:
            matched[..., 0] += _lip_lightness_shift(matched, ref, region)
        rgb = cv2.cvtColor(np.clip(matched, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
        if self.sharpen > 0:
            blur = cv2.GaussianBlur(rgb, (0, 0), 1.2)
            rgb = cv2.addWeighted(rgb, 1 + self.sharpen, blur, -self.sharpen, 0)
        return rgb


def _lip_lightness_shift(matched: np.ndarray, ref: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per pixel lightness to add so the mouth's lips are as light as the target's (Lab)."""
    a = matched[..., 1]
    median_a, ramp_start, lip_a = np.percentile(a[region], [50, LIP_PERCENTILE - LIP_RAMP, LIP_PERCENTILE])
    ref_median_a, ref_lip_a = np.percentile(ref[..., 1][region], [50, LIP_PERCENTILE])
    lips = region & (a >= lip_a)
    ref_lips = region & (ref[..., 1] >= ref_lip_a)
    if lips.sum() < 20 or ref_lips.sum() < 20 or min(lip_a - median_a, ref_lip_a - ref_median_a) < LIP_CONTRAST:
        return np.zeros(a.shape, np.float32)
    shift = float(np.median(ref[..., 0][ref_lips]) - np.median(matched[..., 0][lips]))
    weight = np.clip((a - ramp_start) / max(lip_a - ramp_start, 1e-3), 0, 1) * region
    return (weight * shift).astype(np.float32)


def _shading_shift(light: np.ndarray, ref_light: np.ndarray, region: np.ndarray, sigma: float) -> np.ndarray:
    """Lightness to add so the light falls on the mouth's skin as it falls on the target's.

    The median match above moves the whole region by one amount; a face turned a little,
    or a shadow that moved, lights one cheek or the chin differently from frame to frame,
    and a mouth from another frame brought its own light: at every cut the lower face's
    shading jumped. The difference from the target, smoothed over `sigma` px, is the
    light; the mouth itself (lips, teeth, inside), which differs from the target's by
    shape, is left out of that estimate as an outlier and keeps its own detail. The light
    is smooth, so it is worked out on a grid `step` px apart and interpolated."""
    h, w = light.shape
    step = max(1, int(sigma // 4))
    small = (max(1, w // step), max(1, h // step))
    diff = cv2.resize(ref_light - light, small, interpolation=cv2.INTER_AREA)
    inside = cv2.resize(region.astype(np.float32), small, interpolation=cv2.INTER_AREA) > 0.5
    weight = inside.astype(np.float32)
    field = _smooth(diff, weight, sigma / step)
    for _ in range(2):
        weight = (inside & (np.abs(diff - field) < SHADING_OUTLIER)).astype(np.float32)
        field = _smooth(diff, weight, sigma / step)
    return cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)


def _smooth(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian average of `values` over the pixels `weight` counts (normalised convolution),
    fading to zero far from any of them."""
    total = cv2.GaussianBlur(weight, (0, 0), sigma)
    mean = cv2.GaussianBlur(values * weight, (0, 0), sigma) / np.maximum(total, 1e-3)
    return mean * np.clip(total / 0.25, 0, 1)
