"""Edge cases on real footage: sources that are not one plain talking head, made from the real clips.

    python benchmarks/edge_cases.py [--media DIR] [--out DIR] [--speech NAME]

Each case is cut from ../shared/media/clips with FFmpeg, dubbed with one speech file
through all nine stages (in this process, as `lipdub run` runs them) and checked:

- several faces: map-man beside a smaller blue-woman. By default the larger face is
  dubbed and the track never moves to the other; with `--face x,y` on the smaller one,
  that one is. The face not dubbed is passed through (only the re-encode touches it).
- frames with no face: a second of map-man replaced by a face-free close-up of the
  wall behind him. Those frames pass through, the rest are dubbed, the output is in sync.
- close-up: glasses-woman cropped to her face, so the padded crop leaves the frame;
  clipped to the frame and dubbed, in sync.
- tiny face: map-man scaled down until his face is below `face.min_face_px`; detected,
  flagged tiny and passed through, never garbled.
- still image: one frame as a PNG, of flag-woman mid-word (lips apart) and of
  anchor-man in a pause (lips closed); looped for the dub's length, its mouth opening
  where the dub speaks and never wider than the photo's own when that is open.
- profile views: the media folder has none; covered by the tests only.

Prints a Markdown table (case, what is checked, numbers, pass) and an overall line;
writes results.jsonl under --out. Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")

from common import dub, ffmpeg_exe, folders_problem, media_dir  # noqa: E402
from lipdub import face_geometry as fg  # noqa: E402
from lipdub import media  # noqa: E402
from lipdub.infra.clip_run import ClipRun  # noqa: E402
from lipdub.infra.config import Config, load_config  # noqa: E402
from lipdub.tasks import run_stages  # noqa: E402
from lipdub.tasks.stabilize import landmarks_in  # noqa: E402

DEFAULT_OUT = Path("/tmp/lipdub-edge")
DEFAULT_SPEECH = "en-male-5s.wav"
PASS_THROUGH_DB = 40.0  # a frame passed through differs from the source by the re-encode alone
SIDE = 480  # the several-faces composite: map-man SIDE px square, blue-woman 2/3 of that beside him
TINY_SIDE = 128  # map-man's 306 px face in 844 px becomes 46 px: below face.min_face_px (48)
CUTAWAY_S = (2.0, 3.0)  # the second of map-man replaced by the wall behind him
# photos: (clip, frame, what the photo shows)
STILLS = {"still-parted": ("flag-woman", 0, "lips apart"), "still-closed": ("anchor-man", 62, "lips closed")}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", *args], check=True)


def x264(path: Path) -> list[str]:
    """Near-lossless H.264 + AAC: the case's own file is its source, so its encoding only has to look real."""
    return ["-c:v", "libx264", "-crf", "12", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", str(path)]


# ---------------------------------------------------------------- making the cases


def two_faces(clips: Path, out: Path) -> Path:
    """map-man (SIDE px) on the left, blue-woman (2/3 the size, at 25 fps) on the right, map-man's sound."""
    small = SIDE * 2 // 3
    ffmpeg("-i", str(clips / "map-man.mp4"), "-i", str(clips / "blue-woman.mp4"), "-filter_complex",
           f"[0:v]scale={SIDE}:{SIDE},setsar=1[a];[1:v]fps=25,scale={small}:{small},pad={small}:{SIDE}:0:{(SIDE - small) // 2},setsar=1[b];[a][b]hstack=shortest=1[v]",
           "-map", "[v]", "-map", "0:a", "-shortest", *x264(out))
    return out


def cutaway(clips: Path, out: Path) -> Path:
    """map-man with CUTAWAY_S replaced by the top-left corner of the frame (the wall behind him), enlarged."""
    a, b = CUTAWAY_S
    ffmpeg("-i", str(clips / "map-man.mp4"), "-filter_complex",
           f"[0:v]split=3[p][q][r];[p]trim=0:{a},setpts=PTS-STARTPTS[p1];[q]trim={a}:{b},setpts=PTS-STARTPTS,crop=200:200:0:0,scale=844:844,setsar=1[q1];"
           f"[r]trim={b},setpts=PTS-STARTPTS[r1];[p1][q1][r1]concat=n=3:v=1:a=0[v]",
           "-map", "[v]", "-map", "0:a", *x264(out))
    return out


def close_up(clips: Path, out: Path, cfg: Config, work: Path) -> Path:
    """glasses-woman cropped to a square 1.15 times her face's height around it."""
    video = clips / "glasses-woman.mp4"
    clip = ClipRun.start(video, video, None, cfg.model_copy(update={"work_dir": work}))
    run_stages(clip, ["probe", "face_detect"])
    boxes = np.load(clip.layout.artifact("face_detect", "faces.npz"))["boxes"]
    x0, y0, x1, y1 = np.nanmedian(boxes, axis=0)
    side = int(1.15 * (y1 - y0)) // 2 * 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ffmpeg("-i", str(video), "-vf", f"crop={side}:{side}:{int(cx - side / 2)}:{int(cy - side / 2)},scale=512:512,setsar=1", *x264(out))
    return out


def tiny(clips: Path, out: Path) -> Path:
    ffmpeg("-i", str(clips / "map-man.mp4"), "-vf", f"scale={TINY_SIDE}:{TINY_SIDE},setsar=1", *x264(out))
    return out


def still(clips: Path, out: Path, clip: str, frame: int) -> Path:
    """One frame of a clip as a PNG: a photo of the speaker."""
    ffmpeg("-i", str(clips / f"{clip}.mp4"), "-vf", f"select=eq(n\\,{frame})", "-frames:v", "1", str(out))
    return out


# ---------------------------------------------------------------- reading a dub


def frames(path: Path) -> dict[int, np.ndarray]:
    return dict(media.read_frames(path, media.probe(path).video))


def selection(clip: ClipRun) -> dict[str, np.ndarray]:
    return dict(np.load(clip.layout.artifact("generate", "selection.npz")))


def shown_psnr(clip: ClipRun, source: Path, region: Callable[[np.ndarray], np.ndarray] = lambda im: im) -> np.ndarray:
    """PSNR of each output frame (or a region of it) against the source frame it shows."""
    out = frames(clip.layout.artifact("remux", "output.mp4"))
    src = frames(source)
    target = selection(clip)["target"]
    return np.array([psnr(region(out[j]), region(src[int(t)])) for j, t in enumerate(target) if j in out])


def face_centres_x(clip: ClipRun) -> np.ndarray:
    boxes = np.load(clip.layout.artifact("face_detect", "faces.npz"))["boxes"]
    return ((boxes[:, 0] + boxes[:, 2]) / 2)[~np.isnan(boxes[:, 0])]


def result(case: str, checked: str, numbers: str, ok: bool | None) -> dict[str, Any]:
    """One line of the table (ok None: not measured)."""
    return {"case": case, "checked": checked, "numbers": numbers, "pass": None if ok is None else bool(ok)}


def offset(clip: ClipRun) -> float:
    return float(clip.records["drift"].output.offset_frames)


# ---------------------------------------------------------------- the checks


def check_two_faces(video: Path, speech: Path, cfg: Config, out: Path) -> list[dict[str, Any]]:
    rows = []
    for name, point, left_dubbed in (("several faces, default: the largest", None, True), ("several faces, --face on the smaller", (SIDE + SIDE // 3, SIDE // 2), False)):
        clip = dub(video, speech, out / f"two-faces-{'point' if point else 'default'}.mp4", cfg.for_clip(face=point))
        xs = face_centres_x(clip)
        on_side = float(np.mean(xs < SIDE) if left_dubbed else np.mean(xs >= SIDE))
        other = (lambda im: im[:, SIDE:]) if left_dubbed else (lambda im: im[:, :SIDE])
        kept = shown_psnr(clip, video, other)
        gen = clip.records["generate"]
        ok = on_side == 1.0 and kept.min() >= PASS_THROUGH_DB and gen.frames_generated >= 0.9 * gen.n_output_frames and abs(offset(clip)) <= 1.0
        rows.append(result(name, "track on the chosen face in every frame; the other face passed through; dubbed, in sync",
                  f"track on it {on_side:.0%} of frames; other face min {kept.min():.1f} dB; generated {gen.frames_generated}/{gen.n_output_frames}; offset {offset(clip):+.2f}", ok))
    return rows


def check_cutaway(video: Path, speech: Path, cfg: Config, out: Path) -> list[dict[str, Any]]:
    clip = dub(video, speech, out / "cutaway.mp4", cfg)
    sel = selection(clip)
    fps = float(sel["fps"])
    gone = (sel["target"] >= round(CUTAWAY_S[0] * fps)) & (sel["target"] < round(CUTAWAY_S[1] * fps))
    passed = shown_psnr(clip, video)[gone[: len(sel["target"])]]
    dubbed = float((sel["chosen"][~gone] >= 0).mean())
    ok = bool((sel["chosen"][gone] == -1).all()) and passed.min() >= PASS_THROUGH_DB and dubbed >= 0.9 and abs(offset(clip)) <= 1.0
    return [result("frames with no face", "the cutaway's frames passed through, the rest dubbed, in sync",
                  f"cutaway frames left alone {int((sel['chosen'][gone] == -1).sum())}/{int(gone.sum())} (min {passed.min():.1f} dB); other frames dubbed {dubbed:.0%}; offset {offset(clip):+.2f}", ok)]


def check_close_up(video: Path, speech: Path, cfg: Config, out: Path) -> list[dict[str, Any]]:
    clip = dub(video, speech, out / "close-up.mp4", cfg)
    face = clip.records["face_detect"]
    h = media.probe(video).video.height
    boxes = np.load(clip.layout.artifact("face_detect", "faces.npz"))["boxes"]
    size = float(np.nanmedian(boxes[:, 3] - boxes[:, 1]))
    pad = cfg.face.padding * size
    leaves = bool(np.nanmin(boxes[:, 1]) - pad < 0 or np.nanmax(boxes[:, 3]) + pad > h)
    gen = clip.records["generate"]
    ok = leaves and face.crop_box[1] >= 0 and face.crop_box[3] <= h and gen.frames_generated >= 0.9 * gen.n_output_frames and abs(offset(clip)) <= 1.0
    return [result("close-up", "the padded crop would leave the frame; clipped to it, dubbed, in sync",
                  f"face {size:.0f} px in {h} px, padded crop leaves the frame: {'yes' if leaves else 'no'}; crop {face.crop_box}; generated {gen.frames_generated}/{gen.n_output_frames}; offset {offset(clip):+.2f}", ok)]


def check_tiny(video: Path, speech: Path, cfg: Config, out: Path) -> list[dict[str, Any]]:
    clip = dub(video, speech, out / "tiny.mp4", cfg)
    face = clip.records["face_detect"]
    kept = shown_psnr(clip, video)
    ok = face.frames_with_face > 0 and face.tiny and clip.records["generate"].frames_generated == 0 and kept.min() >= PASS_THROUGH_DB
    return [result("tiny face", "detected, flagged tiny, every frame passed through",
                  f"face {face.median_face_px:.0f} px (min {cfg.face.min_face_px}) in {face.frames_with_face}/{face.n_frames} frames, tiny: {face.tiny}; generated {clip.records['generate'].frames_generated}; min {kept.min():.1f} dB", ok)]


def check_still(image: Path, speech: Path, cfg: Config, out: Path) -> list[dict[str, Any]]:
    clip = dub(image, speech, out / f"{image.stem}.mp4", cfg)
    sel = selection(clip)
    path = clip.layout.artifact("remux", "output.mp4")
    info = media.probe(path)
    length_diff = abs(info.video.duration_s - media.probe(speech).audio.duration_s)
    boxes = np.load(clip.layout.artifact("face_detect", "faces.npz"))["boxes"][np.zeros(info.video.n_frames, int)]
    def lip_gap(video: Path, n: int) -> np.ndarray:
        pts = landmarks_in(video, media.probe(video).video, boxes[:n], cfg.stabilize.landmarker)
        return np.nan_to_num(pts[:, fg.LOWER_INNER_LIP, 1] - pts[:, fg.UPPER_INNER_LIP, 1])

    gap, photo_gap = lip_gap(path, info.video.n_frames), float(lip_gap(image, 1)[0])
    speech_frames = sel["dub_speech"][: len(gap)]
    face_px = float(np.nanmedian(boxes[:, 3] - boxes[:, 1]))
    wider = float(gap[speech_frames].mean() - gap[~speech_frames].mean()) / face_px if (~speech_frames).any() else float("nan")
    r = float(np.corrcoef(gap, sel["predicted_opening"][: len(gap)])[0, 1])
    gen = clip.records["generate"]
    # a photo whose lips are apart is never opened wider: that would paint over its own mouth
    no_wider = photo_gap <= 0.01 * face_px or float(gap.max()) <= photo_gap + 0.01 * face_px
    ok = "still_image" in clip.records["probe"].flags and gen.frames_generated == gen.n_output_frames and length_diff <= 1 / info.video.actual_fps and wider > 0.01 and r >= 0.6 and no_wider
    return [result(f"still image, {STILLS[image.stem][2]}", "looped for the dub's length; lips part where the dub speaks (face mesh on the output), never wider than the photo's if they are apart in it",
                  f"length off the dub's by {length_diff * 1000:.0f} ms; lip gap in speech vs silence +{wider:.1%} of the face; r with the asked opening {r:.2f}; widest gap {gap.max():.0f} px, the photo's {photo_gap:.0f} px", ok)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=None, help="folder with clips/ and speech/ (default: $LIPDUB_MEDIA, else ../shared/media)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"scratch folder (default: {DEFAULT_OUT})")
    ap.add_argument("--speech", default=DEFAULT_SPEECH, help=f"speech file every case is dubbed with (default: {DEFAULT_SPEECH})")
    args = ap.parse_args(argv)
    media_folder = media_dir(args.media)
    if (status := folders_problem("edge_cases", media_folder, args.out)) is not None:
        return status
    if ffmpeg_exe() is None:
        print("edge_cases: needs an ffmpeg binary to cut the cases (pip install imageio-ffmpeg, the `bench` extra)", file=sys.stderr)
        return 2
    out = args.out.resolve()
    cases = out / "cases"
    cases.mkdir(parents=True, exist_ok=True)
    (out / "dubs").mkdir(exist_ok=True)
    clips, speech = media_folder / "clips", media_folder / "speech" / args.speech
    cfg = load_config(work_dir=out / "work")
    started = time.perf_counter()
    print(f"# lipdub edge-case benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; every case dubbed with {speech.name}\n")
    checks = [
        (check_two_faces, lambda: two_faces(clips, cases / "two-faces.mp4")),
        (check_cutaway, lambda: cutaway(clips, cases / "cutaway.mp4")),
        (check_close_up, lambda: close_up(clips, cases / "close-up.mp4", cfg, out / "work")),
        (check_tiny, lambda: tiny(clips, cases / "tiny.mp4")),
    ] + [(check_still, lambda name=name, clip=clip, frame=frame: still(clips, cases / f"{name}.png", clip, frame)) for name, (clip, frame, _) in STILLS.items()]
    rows: list[dict[str, Any]] = []
    for check, make in checks:
        try:
            rows += check(make(), speech, cfg, out / "dubs")
        except Exception as exc:  # noqa: BLE001 - one failing case must not end the run
            rows.append(result(check.__name__.removeprefix("check_"), "", f"error: {exc.__class__.__name__}: {exc}", False))
        print(f"[{time.perf_counter() - started:4.0f} s] {rows[-1]['case']}: {'pass' if rows[-1]['pass'] else 'FAIL'}", file=sys.stderr, flush=True)
    rows.append(result("profile views", "passed through", "no profile footage in the media folder: tests only", None))

    print("| case | checked | numbers | pass |\n| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['case']} | {r['checked']} | {r['numbers']} | {'-' if r['pass'] is None else 'yes' if r['pass'] else 'NO'} |")
    measured = [r for r in rows if r["pass"] is not None]
    print(f"\noverall: {sum(r['pass'] for r in measured)}/{len(measured)} cases pass ({time.perf_counter() - started:.0f} s; outputs in {out / 'dubs'})")
    with open(out / "results.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
