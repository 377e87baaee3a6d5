"""One clip's run: its inputs, config, layout, the stages done so far, and its manifest row.

Stage modules call `clip.run(...)`, which goes through the stage cache and keeps the
fingerprints later stages hash, the timings and what was reused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from lipdub import LipdubError, __version__
from lipdub.infra.config import Config
from lipdub.infra.layout import ClipLayout, clip_id_for, file_digest
from lipdub.infra.manifest import ClipRow, DriftWindowRow, new_run_id, write_rows
from lipdub.infra.stage_cache import run_stage

R = TypeVar("R", bound=BaseModel)
StageEvent = Callable[[str, str, float], None]  # stage, "start" | "done" | "cached" | "failed", seconds


def check_output(output: Path, inputs: list[Path]) -> None:
    """Fail before any work if the result could not be written, or would replace an input."""
    output = Path(output)
    for src in inputs:
        if src.exists() and output.resolve() == Path(src).resolve():
            raise LipdubError(output, "output would overwrite an input file")
    if output.is_dir():
        raise LipdubError(output, "output is a directory")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise LipdubError(output, f"output folder {parent} does not exist")
    probe = parent / f".{output.name}.lipdub-write-test"
    try:  # a real write: permission bits say nothing for root or read-only mounts
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise LipdubError(output, f"output folder is not writable ({exc.strerror})") from exc


def check_inputs(video: Path, audio: Path, output: Path | None) -> None:
    for path in (Path(video), Path(audio)):
        if not path.is_file():
            raise LipdubError(path, "file not found" if not path.exists() else "not a file")
    if output is not None:
        check_output(Path(output), [Path(video), Path(audio)])


@dataclass
class ClipRun:
    video: Path
    audio: Path
    output: Path | None  # None: a run that only measures (the sync doctor without --fix)
    config: Config
    layout: ClipLayout
    run_id: str
    on_event: StageEvent | None = None
    job: str = "dub"  # dub | doctor
    records: dict[str, BaseModel] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    current: str | None = None
    row: ClipRow | None = None  # set when the run ends well
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @classmethod
    def start(cls, video: Path, audio: Path, output: Path | None, config: Config, on_event: StageEvent | None = None, job: str = "dub") -> ClipRun:
        video, audio = Path(video), Path(audio)
        output = Path(output) if output is not None else None
        check_inputs(video, audio, output)
        layout = ClipLayout(config.work_dir, clip_id_for(video, audio))
        return cls(video, audio, output, config, layout, new_run_id(), on_event, job=job)

    def source(self, path: Path) -> str:
        return f"file:{file_digest(path)}"

    def run(self, stage: str, sections: list[str], upstream: list[str], sources: list[Path], record_type: type[R], produce: Callable[[Path], R]) -> R:
        """Run (or reuse) a stage keyed on its config sections, upstream stages and source files."""
        self.current = stage
        self._event(stage, "start", 0.0)
        config_hash = "|".join(self.config.section_hash(s) for s in sections)
        inputs = [self.fingerprints[u] for u in upstream] + [self.source(p) for p in sources]
        started = time.perf_counter()
        try:
            result = run_stage(self.layout, stage, config_hash, inputs, record_type, produce)
        except BaseException:
            self.seconds[stage] = time.perf_counter() - started
            self._event(stage, "failed", self.seconds[stage])
            raise
        self.records[stage] = result.record
        self.fingerprints[stage] = result.fingerprint
        self.seconds[stage] = result.seconds
        if result.cached:
            self.cached.append(stage)
        self._event(stage, "cached" if result.cached else "done", result.seconds)
        self.current = None
        return result.record  # type: ignore[return-value]

    def record(self, stage: str, record_type: type[R]) -> R:
        rec = self.records[stage]
        assert isinstance(rec, record_type)
        return rec

    def publish(self, produced: Path) -> None:
        """Copy the finished output next to its destination, then rename it into place."""
        assert self.output is not None
        tmp = self.output.with_name(f".{self.output.name}.lipdub-tmp")
        try:
            shutil.copyfile(produced, tmp)
            tmp.replace(self.output)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise LipdubError(self.output, f"cannot write output ({exc.strerror})") from exc

    def _event(self, stage: str, what: str, seconds: float) -> None:
        if self.on_event:
            self.on_event(stage, what, seconds)

    @contextlib.contextmanager
    def recorded(self, fields: Callable[[], dict], windows: Callable[[], list[DriftWindowRow]]) -> Iterator[None]:
        """Write this run's manifest row whatever happens: ok with its sync windows, or
        failed with the stage and the error (then re-raise)."""
        try:
            yield
        except Exception as exc:
            message = str(exc) if isinstance(exc, LipdubError) else f"{exc.__class__.__name__}: {exc}"
            self.write_manifest(ClipRow(**fields(), **self.base_row("failed", message)), [])
            raise
        self.row = ClipRow(**fields(), **self.base_row("ok", None))
        self.write_manifest(self.row, windows())

    def write_manifest(self, row: ClipRow, windows: list[DriftWindowRow]) -> None:
        root = self.config.manifests
        write_rows(root, "clips", self.run_id, [row], ClipRow)
        write_rows(root, "drift_windows", self.run_id, windows, DriftWindowRow)

    def base_row(self, status: str, error: str | None) -> dict:
        return dict(
            run_id=self.run_id,
            clip_id=self.layout.clip_id,
            started_at=self.started_at,
            video=str(self.video),
            audio=str(self.audio),
            job=self.job,
            output=str(self.output) if status == "ok" and self.output else None,
            status=status,
            error=error,
            failed_stage=self.current if status != "ok" else None,
            config_hash=self.config.config_hash(),
            preset=self.config.preset,
            stage_seconds=dict(self.seconds),
            stages_cached=list(self.cached),
            lipdub_version=__version__,
        )
