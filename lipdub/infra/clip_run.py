"""One clip's run: its inputs, config, layout, the stages done so far, and its manifest row.

Stage modules call `clip.run(...)`, which goes through the stage cache and keeps the
fingerprints later stages hash, the timings and what was reused.

Inputs, output and work dir may be URLs. Stages decode with PyAV, so `video` and
`audio` are always local files (remote inputs are downloaded into scratch first);
the locations the user gave are kept for the manifest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from lipdub import __version__, error_text
from lipdub.infra import storage
from lipdub.infra.config import Config, StorageConfig
from lipdub.infra.engine import Engine, engine_for
from lipdub.infra.layout import ClipLayout, clip_id_for, file_digest
from lipdub.infra.manifest import ClipRow, DriftWindowRow, new_run_id, write_rows
from lipdub.infra.stage_cache import run_stage, through_video_memo, video_memo_key

R = TypeVar("R", bound=BaseModel)
StageEvent = Callable[[str, str, float], None]  # stage, "start" | "done" | "cached" | "failed", seconds


def check_inputs(video: str | Path, audio: str | Path, output: str | Path | None, storage_cfg: StorageConfig | None = None) -> None:
    """Fail before any work: inputs must exist, the output must be writable and not an input."""
    for loc in (video, audio):
        storage.check_input(loc, storage_cfg)
    if output is not None:
        storage.check_destination(output, [video, audio], storage_cfg)


@dataclass
class ClipRun:
    video: Path  # local copy that stages read
    audio: Path
    output: str | Path | None  # where the result goes (path or URL); None: a run that only measures
    config: Config
    layout: ClipLayout
    run_id: str
    on_event: StageEvent | None = None
    job: str = "dub"  # dub | doctor
    records: dict[str, BaseModel] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    video_keys: dict[str, str] = field(default_factory=dict)  # per-video stages' keys, the same for every dub of the video
    current: str | None = None
    row: ClipRow | None = None  # set when the run ends well
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    video_location: str = ""  # the video and audio as the user gave them (path or URL)
    audio_location: str = ""

    def __post_init__(self) -> None:
        self.video_location = self.video_location or str(self.video)
        self.audio_location = self.audio_location or str(self.audio)

    @classmethod
    def start(cls, video: str | Path, audio: str | Path, output: str | Path | None, config: Config, on_event: StageEvent | None = None, job: str = "dub") -> ClipRun:
        check_inputs(video, audio, output, config.storage)
        scratch = storage.scratch_dir(config)
        local_video, local_audio = (storage.localize(loc, scratch / "inputs", config.storage) for loc in (video, audio))
        remote = config.work_dir if storage.is_remote(config.work_dir) else None
        layout = ClipLayout(scratch, clip_id_for(local_video, local_audio), remote)
        return cls(local_video, local_audio, output, config, layout, new_run_id(), on_event, job=job, video_location=str(video), audio_location=str(audio))

    @property
    def engine(self) -> Engine:
        """Where this run's chunk work and models run (Ray actors shared by the process, or here)."""
        return engine_for(self.config.ray)

    def source(self, path: Path) -> str:
        return f"file:{file_digest(path)}"

    def run(self, stage: str, sections: list[str], upstream: list[str], sources: list[Path], record_type: type[R], produce: Callable[[Path], R], per_video: bool = False) -> R:
        """Run (or reuse) a stage keyed on its config sections, upstream stages and source files.

        per_video: the stage reads the source video alone (and earlier per-video stages), so
        another dub of the same video under this work dir can hand over its files."""
        self.current = stage
        self._event(stage, "start", 0.0)
        config_hash = "|".join(self.config.section_hash(s) for s in sections)
        if per_video:
            key = video_memo_key(stage, config_hash, file_digest(self.video), [self.video_keys[u] for u in upstream if u in self.video_keys])
            self.video_keys[stage] = key
            name = f"{stage}-{key}"
            produce = through_video_memo(self.layout.source_fact(self.video, name), record_type, produce, self.layout.remote_source_fact(self.video, name), self.config.storage)
        inputs = [self.fingerprints[u] for u in upstream] + [self.source(p) for p in sources]
        started = time.perf_counter()
        try:
            result = run_stage(self.layout, stage, config_hash, inputs, record_type, produce, self.config.storage)
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
        """Put the finished output at its destination, whole or not at all."""
        assert self.output is not None
        storage.publish_file(produced, self.output, self.config.storage)

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
            self.write_manifest(ClipRow(**fields(), **self.base_row("failed", error_text(exc))), [])
            raise
        self.row = ClipRow(**fields(), **self.base_row("ok", None))
        self.write_manifest(self.row, windows())

    def write_manifest(self, row: ClipRow, windows: list[DriftWindowRow]) -> None:
        root, cfg = self.config.manifests, self.config.storage
        write_rows(root, "clips", self.run_id, [row], ClipRow, cfg)
        write_rows(root, "drift_windows", self.run_id, windows, DriftWindowRow, cfg)

    def base_row(self, status: str, error: str | None) -> dict:
        return dict(
            run_id=self.run_id,
            clip_id=self.layout.clip_id,
            started_at=self.started_at,
            video=self.video_location,
            audio=self.audio_location,
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
