"""What the benchmark scripts share: where the real media is and where scratch output may go."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = REPO.parent / "shared" / "media"


def media_dir(arg: Path | None) -> Path:
    """--media, else $LIPDUB_MEDIA, else ../shared/media beside the repository."""
    return arg or Path(os.environ.get("LIPDUB_MEDIA") or DEFAULT_MEDIA)


def folders_problem(script: str, media: Path, out: Path) -> int | None:
    """None when the media and the scratch folder are usable; else the exit status, after one line saying why.

    No media is not a failure (a fresh machine has none): the script says so and exits 0.
    Scratch output inside the repository is refused, so media never ends up committed."""
    if not (media / "clips").is_dir() or not (media / "speech").is_dir():
        print(f"{script}: no media folder at {media} (needs clips/ and speech/); set --media or LIPDUB_MEDIA. Nothing measured.")
        return 0
    out = out.resolve()
    if out == REPO or REPO in out.parents:
        print(f"{script}: --out {out} is inside the repository; choose a folder outside it", file=sys.stderr)
        return 2
    return None


def dub(video: Path, speech: Path, output: Path, cfg):
    """All stages in this process, as `lipdub run` runs them, the MP4 published at output;
    the ClipRun, whose records and artifacts the measures read."""
    from lipdub.infra.clip_run import ClipRun
    from lipdub.tasks import run_stages
    from lipdub.infra.layout import STAGES

    clip = ClipRun.start(video, speech, output, cfg)
    run_stages(clip, STAGES)
    clip.publish(clip.layout.artifact("remux", "output.mp4"))
    return clip


def ffmpeg_exe() -> str | None:
    """An ffmpeg binary for baselines and for cutting test cases: imageio-ffmpeg's (the
    `bench` extra), else one on PATH, else None."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - optional: the `bench` extra
        return shutil.which("ffmpeg")
