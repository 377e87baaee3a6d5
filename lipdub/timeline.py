"""Which source frame shows at each output frame, and how long the output runs (sync_mode)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.infra.config import SyncMode


@dataclass(frozen=True)
class Timeline:
    source_index: np.ndarray  # per output frame
    fps: float
    audio_duration_s: float  # the delivered audio is padded with silence or cut to this
    mode: SyncMode

    @property
    def n_frames(self) -> int:
        return len(self.source_index)


def resolve_mode(mode: SyncMode, video_s: float, dub_s: float) -> SyncMode:
    if mode is SyncMode.auto:
        return SyncMode.bounce if dub_s > video_s else SyncMode.cut_off
    return mode


def build_timeline(n_source_frames: int, fps: float, dub_duration_s: float, mode: SyncMode) -> Timeline:
    """Output length follows the dub, except in `silence` mode where it follows the video.

    cut_off: the output ends with the shorter of the two;
    loop: the video restarts from its first frame; bounce: it plays backwards then
    forwards again (no jump cut); silence: the video runs its full length and a shorter
    dub is padded with silence (a longer one is cut at the video's end).
    """
    video_s = n_source_frames / fps
    mode = resolve_mode(mode, video_s, dub_duration_s)
    dub_frames = max(1, int(round(dub_duration_s * fps)))
    if mode is SyncMode.silence:
        n_out = n_source_frames
    elif mode is SyncMode.cut_off:
        n_out = min(n_source_frames, dub_frames)
    else:
        n_out = dub_frames
    j = np.arange(n_out)
    n = n_source_frames
    if mode is SyncMode.loop:
        index = j % n
    elif mode is SyncMode.bounce and n > 1:
        period = 2 * n - 2
        phase = j % period
        index = np.where(phase < n, phase, period - phase)
    else:
        index = np.minimum(j, n - 1)
    return Timeline(index.astype(np.int64), fps, n_out / fps, mode)
