"""Lip colour of enhanced mouths: are the pasted lips as light as the lips of the frame they land on?

Reads the stage artifacts a `quality.py` run left (its --out folder): for every dub, the
generated mouths before enhancement, the source library, the masks and the landmarks.
Every third generated frame is enhanced again here, with the lips' own lightness match
on and off (`enhance.match_lips`), and the median lightness (Lab L, 0-100) inside the
mouth's lip outline (landmarks of the source frame it came from, outer minus inner lip)
is compared with the median inside the target frame's own lip outline.

Prints, per clip, the mean and 90th percentile of |lip L - target's lip L| both ways.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from lipdub import face_geometry as fg
from lipdub.infra.config import EnhanceConfig
from lipdub.models.classical import ClassicalEnhancer

EVERY = 3


def lip_outline(lips: np.ndarray, shape: tuple[int, ...], origin: tuple[int, int]) -> np.ndarray:
    """The lips' pixels in a mouth image: inside the outer outline, outside the inner one."""
    mask = np.zeros(shape[:2], np.uint8)
    outer = len(fg.LIPS_OUTER)  # lips hold the outer ring, then the inner one (fg.LIPS)
    for ring, value in ((lips[:outer], 1), (lips[outer:], 0)):
        cv2.fillPoly(mask, [np.round(ring - origin).astype(np.int32)], value)
    return mask.astype(bool)


def lightness(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float64) * 100 / 255


def clip_differences(work: Path, match_lips: bool) -> list[float]:
    """|lip L - target's lip L| for every third generated frame of one dub's work folder."""
    sel = np.load(work / "generate" / "selection.npz")
    lm = np.load(work / "stabilize" / "landmarks.npz")
    mouths, library = np.load(work / "generate" / "mouths.npy"), np.load(work / "generate" / "library.npy")
    masks = np.load(work / "generate" / "masks.npy")
    x0, y0, _, _ = fg.mouth_box(int(lm["canonical_size"]))
    target, chosen = sel["target"], sel["chosen"]
    frames = np.flatnonzero(chosen >= 0)[::EVERY]
    enhanced = ClassicalEnhancer(sharpen=EnhanceConfig().sharpen, match_lips=match_lips).enhance(mouths[frames], library[target[frames]], masks[frames].astype(np.float32) / 255)
    out = []
    for mouth, j in zip(enhanced, frames):
        own, theirs = lip_outline(lm["lips"][chosen[j]], mouth.shape, (x0, y0)), lip_outline(lm["lips"][target[j]], mouth.shape, (x0, y0))
        if own.sum() >= 20 and theirs.sum() >= 20:
            out.append(abs(np.median(lightness(mouth)[own]) - np.median(lightness(library[target[j]])[theirs])))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("quality_out", type=Path, help="the --out folder of a quality.py run (default preset)")
    args = ap.parse_args()
    dubs = sorted(d for d in (args.quality_out / "work").glob("*-*") if (d / "generate" / "mouths.npy").exists())
    if not dubs:
        print(f"lip_colour: no dubs under {args.quality_out / 'work'}; run quality.py --out {args.quality_out} first", file=sys.stderr)
        return 2
    rows: dict[str, dict[bool, list[float]]] = {}
    for work in dubs:
        clip = work.name.rsplit("-", 1)[0]
        for match in (False, True):
            rows.setdefault(clip, {False: [], True: []})[match] += clip_differences(work, match)
    print("| clip | dubs' frames | |lip L diff| mean, 90th pct: skin match only | with the lips' own match |\n| --- | ---: | ---: | ---: |")
    for clip, by in rows.items():
        off, on = np.array(by[False]), np.array(by[True])
        print(f"| {clip} | {len(on)} | {off.mean():.2f}, {np.percentile(off, 90):.2f} | {on.mean():.2f}, {np.percentile(on, 90):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
