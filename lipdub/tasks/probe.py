"""probe: what the inputs really are, and every way they disagree with what they declare."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from lipdub import LipdubError, media
from lipdub.infra.config import ProbeConfig
from lipdub.infra.clip_run import ClipRun
from lipdub.infra.prefect_task import stage_task


class ProbeRecord(BaseModel):
    video_codec: str
    width: int
    height: int
    rotation_deg: int
    declared_fps: float
    actual_fps: float
    n_frames: int
    vfr: bool
    video_duration_s: float
    video_start_s: float
    source_has_audio: bool
    source_audio_sample_rate: int | None
    source_audio_duration_s: float | None
    source_audio_start_s: float | None
    dub_codec: str
    dub_sample_rate: int
    dub_channels: int
    dub_duration_s: float
    frame_pts: list[int]
    time_base: str
    flags: list[str]


def probe(video: Path, dub: Path, cfg: ProbeConfig) -> ProbeRecord:
    """Probe both inputs; raise LipdubError on anything that cannot be dubbed."""
    vinfo = media.probe(video)
    if vinfo.video is None:
        raise LipdubError(video, "has no video stream")
    v = vinfo.video
    if v.n_frames == 0:
        raise LipdubError(video, "video stream has no frames")
    dinfo = media.probe(dub)
    if dinfo.audio is None:
        raise LipdubError(dub, "has no audio stream")
    if dinfo.audio.duration_s <= 0:
        raise LipdubError(dub, "audio stream is empty")

    flags: list[str] = []
    if abs(v.declared_fps - v.actual_fps) > cfg.fps_mismatch_tolerance * v.actual_fps:
        flags.append("fps_declared_mismatch")
    durations = [b - a for a, b in zip(v.frame_pts, v.frame_pts[1:])]
    if durations:
        mean = sum(durations) / len(durations)
        if mean > 0 and (max(durations) - min(durations)) / mean > cfg.vfr_tolerance:
            flags.append("vfr")
    if v.rotation_deg:
        flags.append("rotated")
    if v.n_frames == 1:
        flags.append("still_image")  # looped for the dub's length; the mouth is opened by warping
    a = vinfo.audio
    if a is not None:
        if abs(a.duration_s - v.duration_s) > cfg.duration_mismatch_s:
            flags.append("source_av_duration_mismatch")
        if abs(a.start_time_s - v.start_time_s) > 0.5 / v.actual_fps:
            flags.append("source_av_start_offset")
    else:
        flags.append("source_no_audio")
    if abs(dinfo.audio.duration_s - v.duration_s) > cfg.duration_mismatch_s:
        flags.append("dub_longer" if dinfo.audio.duration_s > v.duration_s else "dub_shorter")
    return ProbeRecord(
        video_codec=v.codec,
        width=v.width,
        height=v.height,
        rotation_deg=v.rotation_deg,
        declared_fps=v.declared_fps,
        actual_fps=v.actual_fps,
        n_frames=v.n_frames,
        vfr="vfr" in flags,
        video_duration_s=v.duration_s,
        video_start_s=v.start_time_s,
        source_has_audio=a is not None,
        source_audio_sample_rate=a.sample_rate if a else None,
        source_audio_duration_s=a.duration_s if a else None,
        source_audio_start_s=a.start_time_s if a else None,
        dub_codec=dinfo.audio.codec,
        dub_sample_rate=dinfo.audio.sample_rate,
        dub_channels=dinfo.audio.channels,
        dub_duration_s=dinfo.audio.duration_s,
        frame_pts=list(v.frame_pts),
        time_base=str(v.time_base),
        flags=flags,
    )


def video_stream(video: Path, record: ProbeRecord) -> media.VideoStreamInfo:
    """Rebuild the stream description later stages decode with, without probing again."""
    from fractions import Fraction

    return media.VideoStreamInfo(
        codec=record.video_codec,
        width=record.width,
        height=record.height,
        rotation_deg=record.rotation_deg,
        declared_fps=record.declared_fps,
        frame_pts=tuple(record.frame_pts),
        time_base=Fraction(record.time_base),
        start_time_s=record.video_start_s,
        stream_duration_s=record.n_frames / record.actual_fps,
    )


def run_probe(clip: ClipRun) -> ProbeRecord:
    return clip.run("probe", ["probe"], [], [clip.video, clip.audio], ProbeRecord, lambda out: probe(clip.video, clip.audio, clip.config.probe))


probe_task = stage_task(run_probe)
