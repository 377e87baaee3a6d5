"""Benchmark `lipdub run` on real talking-head clips dubbed with real speech.

For each (clip, speech) pair: wall time and peak RSS of the `lipdub run` child
process, real-time factor (wall / output seconds), the ratio to a plain ffmpeg
transcode of the same inputs, the output's frames / fps / length against the dub,
the per-stage seconds and the sync measured on the output and on the source.

    python benchmarks/run_clips.py [--media DIR] [--out DIR] [--preset NAME]
                                   [--pairs default|all|long] [--clips a,b]
                                   [--long-minutes N]   (with --pairs long: N minutes of output)

The media folder is not part of the project (see its README.md). When it is absent
the script says so and exits 0. Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import DEFAULT_MEDIA, ffmpeg_exe, folders_problem, media_dir  # noqa: E402

DEFAULT_OUT = Path("/tmp/lipdub-bench")
STAGES = ("probe", "audio_clean", "face_detect", "stabilize", "generate", "enhance", "blend", "remux", "drift")
EXCLUDED_SPEECH = {"en-60s.wav"}  # a minute of speech: too long for a routine run
DEFAULT_SPEECH = ("fr-7s.wav", "zh-news-8s.wav")  # every clip is dubbed with each of these


# ---------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024**2
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gib": None if ram_gib is None else round(ram_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "loadavg": loadavg(),
        "python": platform.python_version(),
    }


def loadavg() -> str | None:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


def code_fingerprint() -> str | None:
    """Hash of the installed lipdub package's .py files, to see if the code changed mid-benchmark."""
    try:
        import lipdub
    except Exception:  # noqa: BLE001
        return None
    root = Path(lipdub.__file__).parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------- tools


def lipdub_command() -> list[str]:
    """The CLI of the environment this script runs in, else the one on PATH."""
    here = Path(sys.executable).parent / "lipdub"
    if here.is_file():
        return [str(here)]
    found = shutil.which("lipdub")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from lipdub.cli import main; sys.argv[0] = 'lipdub'; main()"]


@dataclass
class ChildRun:
    returncode: int
    wall_s: float
    peak_rss_mib: float
    tree_peak_rss_mib: float | None
    user_s: float
    sys_s: float
    timed_out: bool


def _tree_rss_kib(root: int) -> int | None:
    """Sum of VmRSS over root and all its descendants, from /proc (None off Linux)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for name in entries:
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total


class TreeSampler(threading.Thread):
    """Polls the RSS of a process tree (the Prefect flow may start a server child)."""

    def __init__(self, pid: int, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak_kib = pid, every_s, None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            kib = _tree_rss_kib(self.pid)
            if kib is not None:
                self.peak_kib = max(self.peak_kib or 0, kib)
            self.stop.wait(self.every_s)


def run_measured(cmd: list[str], log: Path, timeout_s: float, env: dict[str, str] | None = None) -> ChildRun:
    """Run cmd, wait for it with wait4 to get its own rusage (peak RSS), log its output.

    ru_maxrss (KiB on Linux) is the largest RSS of the child or of any descendant it
    waited for; it is not a sum over processes. The sampled tree peak is that sum.
    """
    with open(log, "wb") as fh:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the child's own process group
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            sampler.stop.set()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.join()
    tree = None if sampler.peak_kib is None else sampler.peak_kib / 1024.0
    return ChildRun(proc.returncode, wall, usage.ru_maxrss / 1024.0, tree, usage.ru_utime, usage.ru_stime, timed_out.is_set())


# ---------------------------------------------------------------- media facts (PyAV)


def audio_seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        n = sum(f.samples for f in c.decode(s))
        return n / s.rate


def clip_seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.duration:
            return float(s.duration * s.time_base)
        return float(c.duration or 0) / 1e6


def output_facts(path: Path) -> dict[str, Any]:
    """Frames, fps and durations of a finished output, from a full decode."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        times = [float(f.pts * vs.time_base) for f in c.decode(vs) if f.pts is not None]
        declared = float(vs.average_rate) if vs.average_rate else None
        audio_start = audio_end = audio_samples = None
        if c.streams.audio:
            c.seek(0)
            a = c.streams.audio[0]
            frames = [(f.pts, f.samples) for f in c.decode(a)]
            if frames:
                audio_samples = sum(n for _, n in frames)
                if frames[0][0] is not None and frames[-1][0] is not None:
                    audio_start = float(frames[0][0] * a.time_base)
                    audio_end = float(frames[-1][0] * a.time_base) + frames[-1][1] / a.rate
            rate = a.rate
    n = len(times)
    times.sort()
    if n >= 2 and times[-1] > times[0]:
        fps = (n - 1) / (times[-1] - times[0])
    else:
        fps = declared or 0.0
    steps = [b - a for a, b in zip(times, times[1:])]
    video_end = times[-1] + 1 / fps if times and fps else None
    return {
        "out_frames": n,
        "out_fps": fps,
        "out_fps_declared": declared,
        "out_video_s": n / fps if fps else None,
        "out_frame_step_spread": (max(steps) - min(steps)) * fps if steps else None,  # in frames; 0 for CFR
        "out_video_start_s": times[0] if times else None,
        "out_audio_start_s": audio_start,
        # decoded samples include the AAC encoder delay when the file does not mark it
        "out_audio_s": audio_samples / rate if audio_samples is not None else None,
        # where the last sound ends against where the last picture ends, in frames
        "av_end_diff_frames": (audio_end - video_end) * fps if audio_end is not None and video_end is not None else None,
    }


# ---------------------------------------------------------------- manifest


def manifest_row(work_dir: Path) -> dict[str, Any] | None:
    import pyarrow.parquet as pq

    files = sorted((work_dir / "manifests" / "clips").glob("*.parquet"))
    if not files:
        return None
    rows = pq.read_table(files[-1]).to_pylist()
    if not rows:
        return None
    row = rows[-1]
    for key, value in list(row.items()):
        if isinstance(value, list) and value and isinstance(value[0], tuple):  # Arrow map -> pairs
            row[key] = dict(value)
        elif isinstance(value, (dt.datetime, dt.date)):
            row[key] = value.isoformat()
    return row


# ---------------------------------------------------------------- pairs


def language(speech: Path) -> str:
    return speech.stem.split("-", 1)[0]


def choose_pairs(clips: list[Path], speech: list[Path], mode: str) -> list[tuple[Path, Path]]:
    if mode == "long":  # one minute of output: every clip bounced under the 60 s English track
        return [(c, s) for c in clips for s in speech if s.name in EXCLUDED_SPEECH]
    speech = [s for s in speech if s.name not in EXCLUDED_SPEECH]
    if mode == "all":
        return [(c, s) for c in clips for s in speech]
    by_name = {s.name: s for s in speech}
    pairs = [(c, by_name[name]) for name in DEFAULT_SPEECH if name in by_name for c in clips]
    # One English ~5 s dub, on the longest clip, so that the dub is shorter than the video.
    english5 = sorted(s for s in speech if language(s) == "en" and abs(audio_seconds(s) - 5.0) < 0.25)
    if english5 and clips:
        longest = max(clips, key=clip_seconds)
        pairs.append((longest, english5[0]))
    return pairs


def repeated(speech: Path, times: int, out_root: Path) -> Path:
    """The speech file played `times` times over, written once under out_root (a long dub
    from the one long track the media folder has)."""
    path = out_root / f"{speech.stem}-x{times}.wav"
    if not path.exists():
        import numpy as np

        from lipdub import media

        samples, rate = media.read_audio(speech)
        out_root.mkdir(parents=True, exist_ok=True)
        media.write_wav(path, np.tile(samples, (times, 1)), rate)
    return path


# ---------------------------------------------------------------- one pair


def bench_pair(clip: Path, speech: Path, out_root: Path, args: argparse.Namespace, ffmpeg: str | None) -> dict[str, Any]:
    name = f"{clip.stem}__{speech.stem}"
    pair_dir = out_root / name
    if pair_dir.exists():
        shutil.rmtree(pair_dir)
    work = pair_dir / "work"
    work.mkdir(parents=True)
    output = pair_dir / "lipdub.mp4"
    res: dict[str, Any] = {"type": "pair", "clip": clip.name, "speech": speech.name, "dir": str(pair_dir), "error": None, "code": code_fingerprint(), "loadavg_before": loadavg()}
    res["dub_s"] = audio_seconds(speech)
    res["clip_s"] = clip_seconds(clip)

    cmd = lipdub_command() + ["run", str(clip), str(speech), "-o", str(output), "--work-dir", str(work)]
    if args.preset:
        cmd += ["--preset", args.preset]
    if args.sync_mode:
        cmd += ["--sync-mode", args.sync_mode]
    env = dict(os.environ, COLUMNS="120", NO_COLOR="1")
    run = run_measured(cmd, pair_dir / "lipdub.log", args.timeout, env)
    res |= {"wall_s": run.wall_s, "peak_rss_mib": run.peak_rss_mib, "tree_peak_rss_mib": run.tree_peak_rss_mib, "cpu_user_s": run.user_s, "cpu_sys_s": run.sys_s, "returncode": run.returncode}

    row = manifest_row(work)
    if row is not None:
        keep = ("run_id", "clip_id", "status", "error", "failed_stage", "probe_flags", "declared_fps", "actual_fps", "n_frames", "dub_duration_s", "output_duration_s", "sync_mode", "frames_with_face", "frames_usable", "frames_generated", "stages_cached")
        res |= {k: row.get(k) for k in keep}
        res["stage_seconds"] = row.get("stage_seconds") or {}
        for when in ("after", "before"):
            for what in ("offset_frames", "confidence", "drift_frames_per_min", "class"):
                res[f"sync_{what}_{when}"] = row.get(f"sync_{what}_{when}")
        res["sync_verdict_after"] = row.get("sync_verdict_after")
    log_tail = (pair_dir / "lipdub.log").read_text(errors="replace").strip().splitlines()[-3:]
    if run.timed_out:
        res["error"] = f"timed out after {args.timeout:.0f} s"
    elif run.returncode != 0 or (row or {}).get("status") != "ok" or not output.is_file():
        why = (row or {}).get("error") or next((ln for ln in reversed(log_tail) if "error" in ln.lower()), None) or (log_tail[-1] if log_tail else "")
        stage = (row or {}).get("failed_stage")
        res["error"] = f"exit {run.returncode}" + (f" in {stage}" if stage else "") + (f": {why.strip()}" if why else "")
        res["error_short"] = f"exit {run.returncode}" + (f" in {stage}" if stage else "")
        kind = re.match(r"\s*([A-Za-z_][\w.]*(?:Error|Exception))\b", (row or {}).get("error") or "")
        if kind:
            res["error_short"] += f": {kind.group(1)}"
        if row is None:
            res["error"] += " (no manifest row)"
            res["error_short"] += " (no manifest row)"

    if output.is_file():
        try:
            res |= output_facts(output)
            fps = res["out_fps"]
            res["dur_diff_frames"] = (res["out_video_s"] - res["dub_s"]) * fps if res.get("out_video_s") else None
        except Exception as exc:  # noqa: BLE001 - an unreadable output is reported, not fatal
            res["error"] = (res["error"] + "; " if res["error"] else "") + f"output unreadable: {exc.__class__.__name__}: {exc}"
    media_s = res.get("output_duration_s") or res.get("out_video_s")
    res["media_s"] = media_s
    res["rtf"] = run.wall_s / media_s if media_s and not res["error"] else None
    stages = res.get("stage_seconds") or {}
    res["overhead_s"] = run.wall_s - sum(stages.values()) if stages else None

    if ffmpeg:
        ff_out = pair_dir / "ffmpeg.mp4"
        ff_cmd = [ffmpeg, "-nostdin", "-hide_banner", "-y", "-i", str(clip), "-i", str(speech), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "aac", "-b:a", "192k", "-shortest", str(ff_out)]
        ff = run_measured(ff_cmd, pair_dir / "ffmpeg.log", args.timeout)
        res |= {"ffmpeg_wall_s": ff.wall_s, "ffmpeg_peak_rss_mib": ff.peak_rss_mib, "ffmpeg_returncode": ff.returncode}
        if ff.returncode == 0 and not res["error"]:
            res["x_ffmpeg"] = run.wall_s / ff.wall_s
    if not args.keep_outputs:
        shutil.rmtree(work, ignore_errors=True)
        for f in ("lipdub.mp4", "ffmpeg.mp4"):
            (pair_dir / f).unlink(missing_ok=True)
    return res


# ---------------------------------------------------------------- report


def fmt(value: Any, spec: str = ".2f", signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, ("+" if signed else "") + spec)
    return str(value)


def md_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---:" if i in right else "---" for i in range(len(header))) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report(results: list[dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, float]]:
    header = ["clip", "speech", "media s", "wall s", "RTF", "x ffmpeg", "peak RSS MiB", "|dur diff| frames", "offset after (frames)", "verdict after", "offset before"]
    rows = []
    for r in results:
        dd = r.get("dur_diff_frames")
        short = r.get("error_short") or r["error"] or ""
        verdict = f"FAILED ({short[:60]})" if r["error"] else fmt(r.get("sync_verdict_after"))
        rows.append([
            r["clip"].removesuffix(".mp4"), r["speech"].removesuffix(".wav"), fmt(r.get("media_s")), fmt(r.get("wall_s"), ".1f"), fmt(r.get("rtf")),
            fmt(r.get("x_ffmpeg"), ".0f"), fmt(r.get("peak_rss_mib"), ".0f"), fmt(None if dd is None else abs(dd), ".1f"),
            fmt(r.get("sync_offset_frames_after"), ".1f", signed=True), verdict, fmt(r.get("sync_offset_frames_before"), ".1f", signed=True),
        ])
    table = md_table(header, rows, right={2, 3, 4, 5, 6, 7, 8, 10})

    ok = [r for r in results if not r["error"]]
    rtfs = [r["rtf"] for r in ok if r.get("rtf") is not None]
    rss = [r["peak_rss_mib"] for r in results if r.get("peak_rss_mib")]
    summary = {
        "type": "summary",
        "pairs": len(results),
        "failures": len(results) - len(ok),
        "median_rtf": statistics.median(rtfs) if rtfs else None,
        "max_rtf": max(rtfs) if rtfs else None,
        "max_peak_rss_mib": max(rss) if rss else None,
        "max_tree_peak_rss_mib": max((r["tree_peak_rss_mib"] for r in results if r.get("tree_peak_rss_mib")), default=None),
        "median_x_ffmpeg": statistics.median([r["x_ffmpeg"] for r in ok if r.get("x_ffmpeg")]) if any(r.get("x_ffmpeg") for r in ok) else None,
    }
    overall = (
        f"overall: {summary['pairs']} pairs, median RTF {fmt(summary['median_rtf'])}, max RTF {fmt(summary['max_rtf'])}, "
        f"max peak RSS {fmt(summary['max_peak_rss_mib'], '.0f')} MiB (whole process tree, sampled: {fmt(summary['max_tree_peak_rss_mib'], '.0f')} MiB), median x ffmpeg {fmt(summary['median_x_ffmpeg'], '.0f')}, failures {summary['failures']}"
    )

    stage_means: dict[str, float] = {}
    for stage in STAGES + ("(outside stages)",):
        vals = [(r.get("stage_seconds") or {}).get(stage) if stage in STAGES else r.get("overhead_s") for r in ok]
        vals = [v for v in vals if v is not None]
        if vals:
            stage_means[stage] = statistics.fmean(vals)
    mean_wall = statistics.fmean([r["wall_s"] for r in ok]) if ok else 0.0
    stage_rows = [[s, f"{v:.2f}", f"{100 * v / mean_wall:.0f} %" if mean_wall else "-"] for s, v in stage_means.items()]
    stage_table = md_table(["stage", "mean s", "share of wall"], stage_rows, right={1, 2})
    text = "\n".join([table, "", overall, "", f"mean seconds per stage over {len(ok)} successful runs (outside stages: process start, imports, Prefect flow setup):", "", stage_table])
    return text, summary, stage_means


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", type=Path, default=None, help=f"folder with clips/ and speech/ (default: $LIPDUB_MEDIA, else {DEFAULT_MEDIA})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"scratch folder for work dirs, outputs and results.jsonl (default: {DEFAULT_OUT})")
    ap.add_argument("--preset", default=None, help="lipdub preset passed to every run")
    ap.add_argument("--pairs", choices=("default", "all", "long"), default="default", help="default: every clip with fr-7s and zh-news-8s, plus one English 5 s dub; all: every clip x every speech file but en-60s; long: every clip with en-60s")
    ap.add_argument("--long-minutes", type=int, default=1, help="with --pairs long: the 60 s track played this many times over (memory on long dubs)")
    ap.add_argument("--clips", default=None, help="comma-separated clip names (stem or file name) to keep")
    ap.add_argument("--sync-mode", default=None, choices=("auto", "cut_off", "loop", "bounce", "silence"), help="passed to lipdub run")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is killed (default: 900)")
    ap.add_argument("--keep-outputs", action="store_true", help="keep work dirs and output MP4s under --out")
    args = ap.parse_args(argv)

    media = media_dir(args.media)
    clips_dir, speech_dir = media / "clips", media / "speech"
    if (status := folders_problem("run_clips", media, args.out)) is not None:
        return status
    out_root = args.out.resolve()

    clips = sorted(clips_dir.glob("*.mp4"))
    if args.clips:
        wanted = {c.strip().removesuffix(".mp4") for c in args.clips.split(",") if c.strip()}
        unknown = wanted - {c.stem for c in clips}
        if unknown:
            print(f"run_clips: unknown clips: {', '.join(sorted(unknown))} (known: {', '.join(c.stem for c in clips)})", file=sys.stderr)
            return 2
        clips = [c for c in clips if c.stem in wanted]
    speech = sorted(speech_dir.glob("*.wav"))
    pairs = choose_pairs(clips, speech, args.pairs)
    if args.pairs == "long" and args.long_minutes > 1:
        pairs = [(c, repeated(s, args.long_minutes, args.out.resolve())) for c, s in pairs]

    info = machine()
    ffmpeg = ffmpeg_exe()
    try:
        from lipdub import __version__ as lipdub_version
    except Exception:  # noqa: BLE001
        lipdub_version = "?"
    print(f"# lipdub clip benchmark — {info['date']}")
    print()
    print(f"machine: {info['nproc']} CPUs usable ({info['cpu_count']} online), {info['cpu_model']}, {fmt(info['ram_gib'], '.1f')} GiB RAM, {info['os']}, Python {info['python']}, load average {info['loadavg'] or '?'}")
    print(f"lipdub {lipdub_version} via {' '.join(lipdub_command()[:1])}; preset {args.preset or 'default'}; ffmpeg baseline: {ffmpeg or 'not found (pip install imageio-ffmpeg)'}")
    print(f"media: {media}; pairs: {args.pairs} ({len(pairs)}); scratch: {out_root}")
    print()
    sys.stdout.flush()

    out_root.mkdir(parents=True, exist_ok=True)
    jsonl = out_root / "results.jsonl"
    results: list[dict[str, Any]] = []
    with open(jsonl, "w") as fh:
        fh.write(json.dumps({"type": "machine", **info, "lipdub_version": lipdub_version, "preset": args.preset or "default", "pairs_mode": args.pairs, "media": str(media), "ffmpeg": ffmpeg}) + "\n")
        for i, (clip, sp) in enumerate(pairs, 1):
            print(f"[{i}/{len(pairs)}] {clip.name} + {sp.name} ...", end=" ", file=sys.stderr, flush=True)
            try:
                res = bench_pair(clip, sp, out_root, args, ffmpeg)
            except Exception as exc:  # noqa: BLE001 - the benchmark itself failing on one pair must not stop the rest
                res = {"type": "pair", "clip": clip.name, "speech": sp.name, "error": f"benchmark error: {exc.__class__.__name__}: {exc}"}
            print("FAILED" if res["error"] else f"{res['wall_s']:.1f} s", file=sys.stderr, flush=True)
            results.append(res)
            fh.write(json.dumps(res, default=str) + "\n")
            fh.flush()
        text, summary, stage_means = report(results)
        fh.write(json.dumps(summary) + "\n")
        fh.write(json.dumps({"type": "stage_means", "seconds": stage_means}) + "\n")
    print(text)
    codes = {r.get("code") for r in results} | {code_fingerprint()}
    if len(codes) > 1:
        print()
        print(f"warning: the lipdub source changed during the benchmark ({len(codes)} versions seen); rows are not comparable, run again")
    failed = [r for r in results if r["error"]]
    if failed:
        print()
        print("failures:")
        for r in failed:
            print(f"- {r['clip']} + {r['speech']}: {r['error']}")
    print()
    print(f"results: {jsonl}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
