"""classical: match each generated mouth's colour to the frame it lands on, restore detail.

Robust colour statistics (the median of each Lab channel, the spread of lightness)
ignore the mouth interior, which differs between an open and a closed mouth; the lips
then get their own lightness, as the lower face's statistics are mostly skin and a
mouth from a frame lit at another angle keeps lips darker or lighter than its skin's
match says; a light unsharp mask gives back what two resampling warps take away.
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


class ClassicalEnhancer:
    name = "classical"

    def __init__(self, sharpen: float = 0.4, match_lips: bool = True):
        self.sharpen = sharpen
        self.match_lips = match_lips

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
