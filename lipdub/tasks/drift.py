"""drift: measure sync of the output (and of the source with its own soundtrack).

The output's lips are found again by the landmarker on the encoded output, and its
audio is decoded from the output file, so the measurement covers every later step,
the remux included. The source is read from its own file too (`measure_file`, which
the sync doctor uses), so a dub's "before" is what `lipdub doctor` says of the source.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from lipdub import face_geometry as fg
from lipdub import media
from lipdub.infra.config import DriftConfig
from lipdub.infra.engine import LOCAL, Engine
from lipdub.doctor.plot import plot_offsets
from lipdub.sync import SyncResult, SyncWindow, measure_sync
from lipdub.tasks.stabilize import landmarks_in, lips_for_sync
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task


class SyncMetrics(BaseModel):
    offset_frames: float | None
    confidence: float
    drift_frames_per_min: float | None
    sync_class: str
    verdict: str
    reason: str
    offset_at_zero_frames: float | None = None  # with growing drift: the fitted offset at audio time 0

    @classmethod
    def of(cls, result: SyncResult) -> SyncMetrics:
        def finite(v: float) -> float | None:
            return None if np.isnan(v) else float(v)

        return cls(offset_frames=finite(result.offset_frames), confidence=result.confidence, drift_frames_per_min=finite(result.drift_frames_per_min), sync_class=result.sync_class, verdict=result.verdict, reason=result.reason,
                   offset_at_zero_frames=finite(result.offset_at_zero_frames))

    def columns(self, when: str) -> dict[str, float | str | None]:
        """The manifest row's sync columns for this reading: when is "before" (the source, or
        the clip the doctor was given) or "after" (the dub, or the repaired clip)."""
        return {
            f"sync_offset_frames_{when}": self.offset_frames, f"sync_confidence_{when}": self.confidence, f"sync_drift_frames_per_min_{when}": self.drift_frames_per_min,
            f"sync_class_{when}": self.sync_class, f"sync_verdict_{when}": self.verdict, f"sync_reason_{when}": self.reason or None,
        }

    def result(self, windows: list[dict]) -> SyncResult:
        """Back to the measurement a stored record came from (no need to measure again)."""
        def nan(v: float | None) -> float:
            return float("nan") if v is None else v

        return SyncResult(nan(self.offset_frames), self.confidence, nan(self.drift_frames_per_min), self.sync_class, self.verdict, self.reason, [SyncWindow(**w) for w in windows], nan(self.offset_at_zero_frames))


class DriftRecord(BaseModel):
    output: SyncMetrics
    source: SyncMetrics | None


def clock(info: media.MediaInfo, separate_audio: bool, retime: bool = False) -> np.ndarray:
    """Each frame's time on the audio's clock: the file's own timestamps, or i / fps when re-timed."""
    v = info.video
    if retime:
        times = np.arange(v.n_frames) / v.actual_fps
        return times if separate_audio else times + v.start_time_s - info.audio.start_time_s
    return v.frame_times_s if separate_audio else info.frame_times_in_audio_s()


def measure_file(video: Path, audio: Path | None, landmarks_npz: Path, cfg: DriftConfig, analysis_rate: int, retime: bool = False) -> tuple[SyncResult, media.MediaInfo]:
    """Sync of a file whose frames are those the landmarks were found on."""
    lm = np.load(landmarks_npz)
    info = media.probe(video)
    samples, rate = media.read_audio(audio or video, analysis_rate, mono=True)
    lips, valid = lips_for_sync(lm)
    result = measure_sync(lips, valid, samples[:, 0], rate, clock(info, audio is not None, retime), info.video.actual_fps, cfg)
    return result, info


def drift(output_mp4: Path, video: Path, landmarks_npz: Path, faces_npz: Path, selection_npz: Path, out_dir: Path, cfg: DriftConfig, landmarker: str, analysis_rate: int, engine: Engine = LOCAL) -> DriftRecord:
    lm = np.load(landmarks_npz)
    sel = np.load(selection_npz)
    target, fps = sel["target"], float(sel["fps"])
    out_info = media.probe(output_mp4)
    stream = out_info.video
    boxes = np.load(faces_npz)["boxes"][target]  # the output shows source frame target[j] at j
    boxes[~lm["usable"][target]] = np.nan
    raw = landmarks_in(output_mp4, stream, boxes, landmarker, engine=engine)[:, :, :2]
    found = ~np.isnan(raw[:, 0, 0])
    lips = np.zeros((len(raw), len(fg.LIPS), 2), np.float32)
    for j in np.flatnonzero(found):
        lips[j] = fg.apply(lm["to_canonical"][target[j]], raw[j, fg.LIPS])
    audio, rate = media.read_audio(output_mp4, analysis_rate, mono=True)
    out_result = measure_sync(lips, found, audio[:, 0], rate, out_info.frame_times_in_audio_s(), fps, cfg)

    # the source as `lipdub doctor` reads it: its own file's sound, so "before" means the same in both
    src_result = measure_file(video, None, landmarks_npz, cfg, analysis_rate)[0] if media.probe(video).audio else None
    windows = [{"which": which, **w.__dict__} for which, r in (("output", out_result), ("source", src_result)) if r for w in r.windows]
    (out_dir / "windows.json").write_text(json.dumps(windows, indent=1))
    title = f"{output_mp4.name}: dub {out_result.verdict}" + (f", source {src_result.verdict}" if src_result else "")
    if src_result:
        plot_offsets(src_result, out_dir / "sync.png", title, cfg.fine_frames, cfg.noticeable_frames, after=out_result, names=("source, own soundtrack", "dub"))
    else:
        plot_offsets(out_result, out_dir / "sync.png", title, cfg.fine_frames, cfg.noticeable_frames, names=("dub", ""))
    return DriftRecord(output=SyncMetrics.of(out_result), source=SyncMetrics.of(src_result) if src_result else None)


def run_drift(clip: ClipRun) -> DriftRecord:
    at = clip.layout.artifact
    cfg = clip.config
    return clip.run(
        "drift", ["drift", "stabilize.landmarker", "audio.analysis_sample_rate"], ["remux"], [], DriftRecord,
        lambda out: drift(at("remux", "output.mp4"), clip.video, at("stabilize", "landmarks.npz"), at("face_detect", "faces.npz"), at("generate", "selection.npz"), out, cfg.drift, cfg.stabilize.landmarker, cfg.audio.analysis_sample_rate, clip.engine),
    )


drift_task = stage_task(run_drift)
