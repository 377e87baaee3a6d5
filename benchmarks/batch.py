"""Benchmark batches: clips per hour, model loads, and Ray workers on one long clip.

1. A batch of every clip x every short speech file (5 x 4 = 20 jobs) through
   `lipdub batch` with N Ray workers: wall time, clips per hour, model loads per
   model (from the batch's manifest row; must equal the number of workers).
2. One 60 s output (a clip looped under the 60 s English speech) through `lipdub run`
   in-process, on Ray with 1 worker and with 2 workers: wall time and per-stage seconds.

    python benchmarks/batch.py [--media DIR] [--out DIR] [--workers 2 [0 ...]] [--skip-batch] [--skip-long]

Each run gets a fresh work dir, so nothing comes from the cache. Nothing is written
inside the repository.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from common import folders_problem, media_dir

SPEECH = ("en-male-5s.wav", "en-female-5s.wav", "fr-7s.wav", "zh-news-8s.wav")
LONG = ("glasses-woman.mp4", "en-60s.wav")
LIPDUB = [sys.executable, "-m", "lipdub"]


def table(root: Path, name: str) -> list[dict]:
    return pq.read_table(root / "manifests" / name).to_pylist()


def run_batch(media: Path, out: Path, workers: int) -> None:
    """workers 0: models in the command's own process (no Ray), for comparison."""
    clips = sorted((media / "clips").glob("*.mp4"))
    jobs = out / "jobs.csv"
    with open(jobs, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "audio"])
        for clip in clips:
            for speech in SPEECH:
                w.writerow([clip, media / "speech" / speech])
    work = out / f"batch-w{workers}"
    engine = ["--workers", str(workers)] if workers else ["--no-ray"]
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    started = time.perf_counter()
    proc = subprocess.run([*LIPDUB, "batch", str(jobs), "-o", str(work / "out"), "--work-dir", str(work), *engine], capture_output=True, text=True)
    wall = time.perf_counter() - started
    batch = table(work, "batches")[0]
    rows = [r for r in table(work, "clips") if r["job"] == "dub"]
    n = batch["clips"]
    print(f"\nbatch: {n} jobs ({len(clips)} clips x {len(SPEECH)} speech files), {f'{workers} Ray workers' if workers else 'in-process (no Ray)'}, exit {proc.returncode}")
    print(f"  ok {batch['ok']}, failed {batch['failed']}")
    for failure in batch["failures"]:
        print(f"    {failure}")
    print(f"  wall (command, incl. startup) {wall:.0f} s; batch flow {batch['seconds']:.0f} s")
    print(f"  clips per hour: {3600 * n / wall:.0f} (command wall), {3600 * n / batch['seconds']:.0f} (batch flow)")
    out_s = sum(r["output_duration_s"] or 0 for r in rows)
    print(f"  output seconds {out_s:.0f}; real-time factor over the batch {wall / max(out_s, 1e-9):.2f}")
    loads = dict(batch["model_loads"])
    print(f"  model loads: {', '.join(f'{k} {v}' for k, v in sorted(loads.items()))} (workers {batch['workers']}, clips {n})")
    print(f"  loads == workers for every model: {all(v == batch['workers'] for v in loads.values())}")


def run_long(media: Path, out: Path, label: str, extra: list[str]) -> dict:
    work = out / f"long-{label}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    proc = subprocess.run([*LIPDUB, "run", str(media / "clips" / LONG[0]), str(media / "speech" / LONG[1]), "-o", str(work / "out.mp4"), "--work-dir", str(work), *extra], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        print(f"  {label}: FAILED {proc.stderr.strip().splitlines()[-1:]}")
        return {}
    row = table(work, "clips")[0]
    stages = dict(row["stage_seconds"])
    return {"label": label, "wall": wall, "out_s": row["output_duration_s"], "stages": stages}


def report_long(results: list[dict]) -> None:
    results = [r for r in results if r]
    if not results:
        return
    print(f"\nlong clip: {LONG[0]} under {LONG[1]} ({results[0]['out_s']:.1f} s output)")
    stages = list(results[0]["stages"])
    print(f"  {'':<14}" + "".join(f"{r['label']:>12}" for r in results))
    print(f"  {'wall s':<14}" + "".join(f"{r['wall']:>12.1f}" for r in results))
    print(f"  {'RTF':<14}" + "".join(f"{r['wall'] / r['out_s']:>12.2f}" for r in results))
    for stage in stages:
        print(f"  {stage:<14}" + "".join(f"{r['stages'].get(stage, 0):>12.1f}" for r in results))
    by = {r["label"]: r for r in results}
    if "ray-1" in by and "ray-2" in by:
        print(f"  speed-up 2 workers vs 1: {by['ray-1']['wall'] / by['ray-2']['wall']:.2f}x wall, "
              f"{sum(by['ray-1']['stages'].values()) / sum(by['ray-2']['stages'].values()):.2f}x stage time")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path)
    ap.add_argument("--out", type=Path, default=Path("/tmp/lipdub-bench-batch"))
    ap.add_argument("--workers", type=int, nargs="+", default=[2], help="Ray workers per batch run; 0 = in-process")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--skip-long", action="store_true")
    args = ap.parse_args()
    media = media_dir(args.media)
    if (code := folders_problem("batch.py", media, args.out)) is not None:
        return code
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"# lipdub batch benchmark, {dt.date.today()}")
    if not args.skip_batch:
        for workers in args.workers:
            run_batch(media, args.out, workers)
    if not args.skip_long:
        report_long([run_long(media, args.out, "in-process", ["--no-ray"]), run_long(media, args.out, "ray-1", ["--workers", "1"]), run_long(media, args.out, "ray-2", ["--workers", "2"])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
