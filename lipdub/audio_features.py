"""Audio measures shared by audio_clean, generate and drift: frame energy, log-mel, speech mask.

Everything is computed on frame-rate grids so that audio rows line up with video frames.
"""

from __future__ import annotations

import librosa
import numpy as np

EPS = 1e-10


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def dbfs(x: np.ndarray | float) -> np.ndarray | float:
    return 20.0 * np.log10(np.maximum(np.abs(x), EPS))


def _frames(mono: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Centred, zero-padded frames (n_frames, win), frame i centred on sample i * hop."""
    padded = np.pad(mono, (win // 2, win // 2))
    n = 1 + max(0, len(padded) - win) // hop
    return np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n]


def frame_rms_db(mono: np.ndarray, sample_rate: int, hop_s: float = 0.01, win_s: float = 0.02) -> np.ndarray:
    """RMS level in dBFS on a regular grid (hop_s apart, centred windows)."""
    hop = max(1, int(round(hop_s * sample_rate)))
    win = max(hop, int(round(win_s * sample_rate)))
    frames = _frames(mono.astype(np.float32), win, hop)
    return dbfs(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)))


def speech_threshold_db(level_db: np.ndarray, relative_db: float) -> float:
    """Level above which a frame is speech: relative to the loud end, never below the noise floor."""
    loud = float(np.percentile(level_db, 99))
    floor = float(np.percentile(level_db, 10))
    return max(loud + relative_db, floor + 6.0, -70.0)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where mask is True."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2], edges[1::2]))


class LogMel:
    """Log-mel energies on a 10 ms grid, computed once, read at any times (frame times, lagged).

    Each read averages the rows inside one video frame's span around the time, and
    interpolates between rows, so a lag of half a frame is a real half frame."""

    HOP_S = 0.01
    BLOCK_ROWS = 6000  # one minute of rows

    def __init__(self, mono: np.ndarray, sample_rate: int, n_mels: int = 26):
        hop = int(round(self.HOP_S * sample_rate))
        win = int(round(0.025 * sample_rate))
        n_fft = 1 << (win - 1).bit_length()
        frames = _frames(mono.astype(np.float32), win, hop)  # a view: no copy per row
        window = np.hanning(win).astype(np.float32)
        bank = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=60, fmax=min(7600, sample_rate / 2))
        self.grid = np.empty((len(frames), n_mels), np.float32)  # (rows, n_mels)
        for a in range(0, len(frames), self.BLOCK_ROWS):  # a block at a time: the spectra of a whole hour would take gigabytes
            power = np.abs(np.fft.rfft(frames[a : a + self.BLOCK_ROWS] * window, n=n_fft, axis=1)) ** 2
            self.grid[a : a + self.BLOCK_ROWS] = np.log(power @ bank.T + 1e-8)
        self._smoothed: dict[int, np.ndarray] = {}

    def at(self, times_s: np.ndarray, frame_s: float) -> np.ndarray:
        """(len(times), n_mels), each row the mean over a frame's span centred on its time."""
        span = max(1, int(round(frame_s / self.HOP_S)))
        if span not in self._smoothed:
            half = span // 2
            padded = np.pad(self.grid, ((half, half), (0, 0)), mode="edge")
            cumsum = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
            self._smoothed[span] = (cumsum[2 * half + 1 :] - cumsum[: -(2 * half + 1)]) / (2 * half + 1)
        table = self._smoothed[span]
        pos = np.clip(times_s / self.HOP_S, 0, len(table) - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, len(table) - 1)
        frac = (pos - lo)[:, None]
        return (table[lo] * (1 - frac) + table[hi] * frac).astype(np.float32)


def log_mel_frames(mono: np.ndarray, sample_rate: int, times_s: np.ndarray, n_mels: int = 26) -> np.ndarray:
    """Log-mel energies (frames x n_mels) at the given times (e.g. video frame times)."""
    frame_s = float(np.median(np.diff(times_s))) if len(times_s) > 1 else LogMel.HOP_S
    return LogMel(mono, sample_rate, n_mels).at(times_s, frame_s)


def speech_mask_frames(mono: np.ndarray, sample_rate: int, times_s: np.ndarray, relative_db: float = -35.0, hangover_s: float = 0.06) -> np.ndarray:
    """True where a video-frame time has speech around it (level above threshold, small hangover)."""
    level = frame_rms_db(mono, sample_rate)
    thr = speech_threshold_db(level, relative_db)
    active = level > thr
    k = max(1, int(round(hangover_s / 0.01)))
    active = np.convolve(active.astype(float), np.ones(2 * k + 1), mode="same") > 0
    idx = np.clip(np.round(times_s / 0.01).astype(int), 0, len(active) - 1)
    return active[idx]
