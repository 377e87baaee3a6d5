"""`lipdub` on the command line: run one clip through the dub_clip flow with a live stage display."""

from __future__ import annotations

import os

# Quiet native logging of the embedded models and Prefect's per-task INFO lines; set
# before those libraries are imported. The user's own settings win.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")  # failures are reported by the CLI itself
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import contextlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.table import Table  # noqa: E402

from lipdub import LipdubError, __version__  # noqa: E402
from lipdub.infra.config import SyncMode, load_config, preset_names  # noqa: E402
from lipdub.infra.layout import DOCTOR_STAGES, STAGES  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Re-animate a speaker's mouth to a new speech track, with proof of sync.")
err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]lipdub: error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class StageBoard:
    """A live table: one line per stage, its state and seconds."""

    def __init__(self, stages: tuple[str, ...] = STAGES) -> None:
        self.state = {s: ("waiting", None) for s in stages}
        self.started: dict[str, float] = {}

    def __call__(self, stage: str, what: str, seconds: float) -> None:
        if what == "start":
            self.started[stage] = time.perf_counter()
            self.state[stage] = ("running", None)
        else:
            self.state[stage] = ({"done": "done", "cached": "reused", "failed": "FAILED"}[what], seconds)
        if self.live:
            self.live.update(self.table())

    def table(self) -> Table:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("stage")
        table.add_column("state")
        table.add_column("seconds", justify="right")
        colors = {"waiting": "dim", "running": "yellow", "done": "green", "reused": "cyan", "FAILED": "red"}
        for stage, (state, seconds) in self.state.items():
            if state == "running":
                seconds = time.perf_counter() - self.started[stage]
            table.add_row(stage, f"[{colors[state]}]{state}[/]", "" if seconds is None else f"{seconds:.1f}")
        return table

    live: Live | None = None


@contextlib.contextmanager
def _one_line_errors(subject: str, verbose: bool) -> Iterator[None]:
    """Failures end the command with one line (ours name the file; anything else is an
    internal error about `subject`), a traceback only with --verbose."""
    try:
        yield
    except typer.Exit:
        raise
    except LipdubError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - one line for the user, traceback on request
        if verbose:
            err.print_exception()
        _fail(f"{subject}: internal error ({exc.__class__.__name__}: {exc}); re-run with --verbose")


def _run_flow(flow_call, cfg, video: str, audio: str, output: str | None, stages: tuple[str, ...], verbose: bool):
    """What every command does around its flow: check inputs before any work, start the local
    Prefect API while models load, show the stage table, turn failures into one line."""
    with _one_line_errors(video, verbose):
        from lipdub.infra.clip_run import check_inputs

        check_inputs(video, audio, output, cfg.storage)
        from lipdub.infra.prefect_api import LocalPrefectAPI

        api = LocalPrefectAPI()
        from lipdub.infra.engine import engine_for, warm

        warm(engine_for(cfg.ray), cfg)  # in this process, or in the Ray actors
        board = StageBoard(stages)
        with api.active(), Live(board.table(), console=err, refresh_per_second=4, transient=False) as live:
            board.live = live
            try:
                return flow_call(board)
            finally:
                live.update(board.table())
                live.stop()
                err.line()  # the table leaves the cursor on its last row


def _ray_settings(enabled: bool | None, address: str | None, workers: int | None) -> dict | None:
    """Command-line Ray flags as a config override (None: leave the config as it is)."""
    given = {k: v for k, v in {"enabled": enabled, "address": address, "workers": workers}.items() if v is not None}
    if (address or workers) and enabled is None:
        given["enabled"] = True
    return given or None


@app.command()
def run(
    video: str = typer.Argument(..., help="talking-head video (path or s3:// URL)"),
    audio: str = typer.Argument(..., help="the dub: new speech for the video (path or s3:// URL)"),
    output: str = typer.Option(..., "-o", "--output", help="where to write the dubbed MP4 (path or s3:// URL)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (validated; unknown keys are errors)"),
    preset: Optional[str] = typer.Option(None, "--preset", help=f"one of: {', '.join(preset_names())}"),
    work_dir: Optional[str] = typer.Option(None, "--work-dir", help="stage artifacts and cache, a folder or s3:// prefix (default: ./lipdub-work)"),
    sync_mode: Optional[SyncMode] = typer.Option(None, "--sync-mode", help="when lengths differ: auto (bounce if the dub is longer, cut if shorter), cut_off, loop, bounce, silence"),
    face: Optional[str] = typer.Option(None, "--face", help="x,y (pixels) on the face to dub when several are visible; default: the largest"),
    language: Optional[str] = typer.Option(None, "--language", help="language of the dub, e.g. en: English /p b m/ are found from recognised words (others by phones alone)"),
    use_ray: Optional[bool] = typer.Option(None, "--ray/--no-ray", help="run models on Ray actors, chunks in parallel (default: no for one clip)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a running cluster ('auto', 'ray://head:10001')"),
    workers: Optional[int] = typer.Option(None, "--workers", help="model-hosting Ray actors (default: one per CPU, or per GPU)"),
    verbose: bool = typer.Option(False, "--verbose", help="show tracebacks and Prefect logs"),
) -> None:
    """Dub VIDEO with AUDIO and write OUTPUT; re-running reuses every finished stage."""
    try:
        cfg = load_config(config, preset, work_dir=work_dir, ray=_ray_settings(use_ray, ray_address, workers))
    except LipdubError as exc:
        _fail(str(exc))
    from lipdub.infra.jobs import parse_point

    try:
        point = parse_point(face) if face else None
    except ValueError as exc:
        _fail(f"--face {face}: {exc}", 2)
    cfg = cfg.for_clip(sync_mode, point, language)  # the same per-clip options a job file row has

    def call(board: StageBoard):
        from lipdub.flows.dub_clip import dub_clip

        return dub_clip(video, audio, output, cfg, on_event=board)

    row = _run_flow(call, cfg, video, audio, output, STAGES, verbose)
    from lipdub.flows.summary import output_sync, source_off_note

    after = output_sync(row.sync_offset_frames_after, row.sync_verdict_after, row.frames_generated, row.sync_reason_after)
    out.print(f"wrote {output}: {row.output_duration_s:.2f} s at {row.actual_fps:.3f} fps, sync {after}; manifest in {cfg.manifests}", soft_wrap=True, highlight=False)
    if note := source_off_note(row.sync_offset_frames_before, row.sync_verdict_before, row.sync_reason_before):
        out.print(f"note: {note}; the dub's mouths follow the dub, and `lipdub doctor {video}` says why the source is off", soft_wrap=True, highlight=False)


@app.command()
def doctor(
    video: str = typer.Argument(..., help="a talking-head clip made by any tool (path or s3:// URL)"),
    audio: Optional[str] = typer.Option(None, "--audio", help="a separate soundtrack to check against the video (default: the video's own)"),
    fix: bool = typer.Option(False, "--fix", help="repair the sync and write -o"),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="where --fix writes the repaired MP4 (path or s3:// URL)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="also copy the offset-over-time PNG here"),
    config: Optional[Path] = typer.Option(None, "--config"),
    work_dir: Optional[str] = typer.Option(None, "--work-dir"),
    verbose: bool = typer.Option(False, "--verbose"),
) -> None:
    """Measure VIDEO's lip sync (offset, drift, causes); with --fix -o OUT, repair it and measure again."""
    import json
    import shutil

    if fix != (output is not None):
        _fail("--fix and -o go together: --fix -o OUT.mp4", 2)
    try:
        cfg = load_config(config, None, work_dir=work_dir)
    except LipdubError as exc:
        _fail(str(exc))

    def call(board: StageBoard):
        from lipdub.flows.doctor import doctor_clip

        return doctor_clip(video, audio, output, cfg, on_event=board)

    clip = _run_flow(call, cfg, video, audio or video, output, DOCTOR_STAGES if fix else DOCTOR_STAGES[:-1], verbose)
    analysis = clip.records["sync_analysis"]
    fixed = clip.records.get("repair")
    png = clip.layout.artifact("repair" if fixed else "sync_analysis", "sync.png")
    if plot:
        shutil.copyfile(png, plot)
    report = {"video": str(video), "audio": str(audio) if audio else None, **analysis.model_dump(mode="json"), "plot": str(plot or png)}
    if fixed:
        report |= {"repairs": fixed.steps, "after": fixed.after.model_dump(mode="json"), "output": str(output)}
    if as_json:
        print(json.dumps(report, indent=1))
        return
    _print_doctor(report)


def _print_doctor(report: dict) -> None:
    sync = report["sync"]
    colour = {"fine": "green", "noticeable": "yellow", "unacceptable": "red"}.get(sync["verdict"], "white")
    offset = "n/a" if sync["offset_frames"] is None else f"{sync['offset_frames']:+.1f} frames ({report['offset_ms']:+.0f} ms, + = audio late)"
    drift = "n/a (clip too short for a slope)" if sync["drift_frames_per_min"] is None else f"{sync['drift_frames_per_min']:+.2f} frames/min"
    if sync["sync_class"] == "growing_drift" and sync["offset_at_zero_frames"] is not None:
        from lipdub.sync import drift_line

        start, end = (drift_line(sync["offset_at_zero_frames"], sync["drift_frames_per_min"], t) for t in (0.0, report["duration_s"]))
        drift += f" ({start:+.1f} at the start, {end:+.1f} at the end)"
    out.print(f"[bold]{report['video']}[/]  {report['frames']} frames, {report['fps']:.3f} fps, {report['duration_s']:.2f} s", highlight=False)
    out.print(f"  sync: [{colour}]{sync['verdict']}[/] / {sync['sync_class']}  offset {offset}, drift {drift}, confidence {sync['confidence']:.2f}  {sync['reason']}", highlight=False)
    if report["findings"]:
        table = Table(box=None, show_header=True, header_style="bold", padding=(0, 2))
        table.add_column("finding")
        table.add_column("severity")
        table.add_column("evidence")
        for f in report["findings"]:
            table.add_row(f["name"], f["severity"], f["evidence"])
        out.print(table)
    else:
        out.print("  no stream or audio problems found")
    if "after" in report:
        after = report["after"]
        out.print(f"  repaired: {'; '.join(report['repairs'])}", highlight=False)
        out.print(f"  after: {after['verdict']} / {after['sync_class']}, offset {after['offset_frames']:+.1f} frames -> wrote {report['output']}", highlight=False)
    out.print(f"  plot: {report['plot']}", highlight=False)


@app.command()
def batch(
    jobs: str = typer.Argument(..., help="job file (CSV, JSON lines or Parquet; local or s3://): video, audio[, output, sync_mode, face, language]"),
    output_prefix: str = typer.Option(..., "-o", "--output-prefix", help="folder or s3:// prefix for outputs without an output column"),
    config: Optional[Path] = typer.Option(None, "--config"),
    preset: Optional[str] = typer.Option(None, "--preset"),
    work_dir: Optional[str] = typer.Option(None, "--work-dir", help="stage artifacts and cache, local or s3://"),
    use_ray: Optional[bool] = typer.Option(None, "--ray/--no-ray", help="models on Ray actors (default for batches) or in this process"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a running cluster ('auto', 'ray://head:10001')"),
    workers: Optional[int] = typer.Option(None, "--workers", help="model-hosting actors (default: one per CPU, or per GPU)"),
    verbose: bool = typer.Option(False, "--verbose"),
) -> None:
    """Dub every clip in JOBS, each as its own run; failures are listed, the others carry on."""
    try:
        cfg = load_config(config, preset, work_dir=work_dir, ray=_ray_settings(use_ray, ray_address, workers))
    except LipdubError as exc:
        _fail(str(exc))
    from lipdub.flows.batch import batch_outcome, dub_batch
    from lipdub.infra.prefect_api import LocalPrefectAPI

    def show(clip: dict) -> None:
        colour = "green" if clip["status"] == "ok" else "red"
        detail = f"{clip['video']} -> {clip['output']}  sync {clip['sync_after']}" if clip["status"] == "ok" else clip["error"]
        if clip["status"] == "ok" and clip["source_note"]:
            detail += f"  (note: {clip['source_note']})"
        err.print(f"[{colour}]{clip['status']:>6}[/] row {clip['row']}: {detail}", highlight=False, soft_wrap=True)

    api = LocalPrefectAPI()
    with _one_line_errors(jobs, verbose), api.active():
        outcome = batch_outcome(dub_batch(jobs, output_prefix, cfg, on_clip=show, return_state=True))
        if isinstance(outcome, BaseException):  # the batch itself could not start (bad job file, ...)
            raise outcome
    out.print(f"{outcome.clips} clips: {outcome.ok} ok, {outcome.failed} failed, {outcome.reused} reused; {outcome.seconds:.0f} s; manifest in {cfg.manifests}", highlight=False, soft_wrap=True)
    if outcome.failed:
        raise typer.Exit(1)


@app.command()
def report(
    manifests: str = typer.Argument("lipdub-work/manifests", help="manifest folder, or the work directory holding one (path or s3:// prefix)"),
    since: str = typer.Option("7d", "--since", help="how far back: 7d, 36h, 90m, or an ISO date"),
    as_json: bool = typer.Option(False, "--json", help="print the rows as JSON lines"),
) -> None:
    """List clips out of sync tolerance (or failed) in recent runs, from the Parquet manifests."""
    import json

    from lipdub.infra.manifest import out_of_tolerance

    try:
        start = _since(since)
        rows = out_of_tolerance(manifests, start)
    except FileNotFoundError:
        _fail(f"{manifests}: no manifests there (nor in its manifests/ folder)")
    except ValueError as exc:
        _fail(f"{since}: {exc}")
    if as_json:
        for r in rows:
            print(json.dumps(r, default=str))
        return
    table = Table(box=None, header_style="bold", padding=(0, 2))
    errors = any(r["error"] for r in rows)  # the column only when some run failed: it takes room from the clip's name
    for col in ("started (UTC)", "job", "clip", "status", "frames", "verdict") + (("error",) if errors else ()):
        table.add_column(col, no_wrap=col not in ("clip", "error"), overflow="fold")
    weak_seen = False
    for r in sorted(rows, key=lambda r: r["started_at"]):
        when = "after" if r["sync_offset_frames_after"] is not None else "before"
        offset, reason = r[f"sync_offset_frames_{when}"], r[f"sync_reason_{when}"]
        weak = offset is not None and bool(reason)  # a reading whose reason says it may be off
        weak_seen |= weak
        verdict = (r["sync_verdict_after"] or r["sync_verdict_before"] or "") + (" (weak)" if weak else "")
        cells = [f"{r['started_at']:%m-%d %H:%M}", r["job"], _clip_name(r), r["status"], "" if offset is None else f"{offset:+.1f}", verdict]
        table.add_row(*cells, *([(r["error"] or "")[:80]] if errors else []))
    if rows:
        out.print(table)
    out.print(f"{len(rows)} clip(s) out of tolerance or failed since {start:%Y-%m-%d %H:%M} UTC (frames: the sync offset, + = audio late)", highlight=False)
    if weak_seen:
        out.print("(weak): the sound fits that reading poorly, or fits another offset as well: check it by eye", highlight=False)


def _clip_name(row: dict) -> str:
    """The files a person knows the clip by: a full path squeezed into a column read '/work/sh…'."""
    def name(location: str) -> str:
        return location.rstrip("/").rsplit("/", 1)[-1]

    video = name(row["video"])
    return video if not row["audio"] or row["audio"] == row["video"] else f"{video} + {name(row['audio'])}"


def _since(text: str):
    """'7d' / '36h' / '90m' before now, or an ISO date (UTC)."""
    import datetime as dt

    units = {"d": "days", "h": "hours", "m": "minutes"}
    now = dt.datetime.now(dt.timezone.utc)
    if text[-1:] in units and text[:-1].isdigit():
        return now - dt.timedelta(**{units[text[-1]]: int(text[:-1])})
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


@app.command()
def demo(
    output: Path = typer.Option(Path("lipdub-demo.mp4"), "-o", "--output"),
    work_dir: Path = typer.Option(Path("lipdub-work"), "--work-dir"),
) -> None:
    """Make a synthetic talking face and a different speech track, then dub it (no download)."""
    from lipdub import samples

    work_dir.mkdir(parents=True, exist_ok=True)
    face = samples.make_talking_face(work_dir / "demo-face.mp4", duration_s=4.0, seed=1)
    speech = samples.synth_speech(samples.speech_envelope(5.0, 25.0, seed=7), 25.0, 16000, seed=7, f0_hz=180.0)
    dub = samples.write_wav(work_dir / "demo-dub.wav", speech, 16000)
    out.print(f"sample: {face.video_path} + {dub}")
    run(face.video_path, dub, output, config=None, preset=None, work_dir=work_dir, sync_mode=None, face=None, language=None, use_ray=None, ray_address=None, workers=None, verbose=False)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    sys.exit(app())
