"""The one place that knows where artifacts live.

<work_dir>/<clip_id>/<stage>/ holds a stage's files and its record.json (the typed
record the stage returned, the cache key it was made under, and a nonce that changes
whenever the stage really runs, so later stages know to run again).
<work_dir>/sources/<video digest>/ holds what is worked out from a source video alone
(faces, landmarks, the blend's CRF choice), shared by all its dubs.

Stages read and write local files. When the work dir is a URL, the local tree lives in
a scratch folder and `remote` is the work dir, where each finished stage is mirrored
under the same relative path.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from lipdub.infra import storage

STAGES = ("probe", "audio_clean", "face_detect", "stabilize", "generate", "enhance", "blend", "remux", "drift")

# Files each stage writes inside its directory (besides record.json).
ARTIFACTS: dict[str, tuple[str, ...]] = {
    "probe": (),
    "audio_clean": ("analysis.wav", "delivery.wav", "source_analysis.wav"),
    "face_detect": ("faces.npz",),
    "stabilize": ("landmarks.npz",),
    "generate": ("mouths.npy", "library.npy", "masks.npy", "selection.npz"),
    "enhance": ("mouths.npy",),
    "blend": ("segments",),
    "remux": ("output.mp4",),
    "drift": ("windows.json", "sync.png"),
    # the sync doctor's stages, after probe, face_detect and stabilize
    "sync_analysis": ("report.json", "sync.png"),
    "repair": ("fixed.mp4", "sync.png"),
}
DOCTOR_STAGES = ("probe", "face_detect", "stabilize", "sync_analysis", "repair")

RECORD = "record.json"
SOURCES = "sources"  # <work_dir>/sources/<video digest>/: what is known of a source video alone


def file_digest(path: Path, _memo: dict[tuple[str, int, int], str] = {}) -> str:  # noqa: B006 - per-process memo
    """Content hash of a user's input file (memoised on path, size and mtime)."""
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _memo:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _memo[memo_key] = h.hexdigest()[:16]
    return _memo[memo_key]


def clip_id_for(video: Path, audio: Path) -> str:
    """Readable and unique: the video's stem plus a hash of both inputs' contents."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(video).stem)[:40].strip("-") or "clip"
    both = hashlib.sha256((file_digest(Path(video)) + file_digest(Path(audio))).encode()).hexdigest()[:8]
    return f"{stem}-{both}"


@dataclass(frozen=True)
class ClipLayout:
    work_dir: Path  # local: the work dir itself, or the scratch folder when the work dir is remote
    clip_id: str
    remote: str | None = None  # the remote work dir (URL) that mirrors work_dir, if any

    @property
    def root(self) -> Path:
        return Path(self.work_dir) / self.clip_id

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def record(self, stage: str) -> Path:
        return self.stage_dir(stage) / RECORD

    def remote_stage_dir(self, stage: str) -> str | None:
        return storage.join(self.remote, self.clip_id, stage) if self.remote else None

    def source_fact(self, video: Path, name: str) -> Path:
        """A small file or folder about the source video alone, shared by every dub of it made under
        this work dir (its clips differ by their audio, and would each work it out again)."""
        return Path(self.work_dir) / SOURCES / file_digest(Path(video)) / name

    def remote_source_fact(self, video: Path, name: str) -> str | None:
        """Where source_fact is mirrored when the work dir is remote."""
        return storage.join(self.remote, SOURCES, file_digest(Path(video)), name) if self.remote else None

    def artifact(self, stage: str, name: str) -> Path:
        if name not in ARTIFACTS[stage]:
            raise KeyError(f"{stage} writes no artifact named {name!r}")
        return self.stage_dir(stage) / name

    def durable_artifact(self, stage: str, name: str) -> str:
        """Where an artifact stays after this machine's scratch is gone (for links)."""
        local = self.artifact(stage, name)
        return storage.join(self.remote_stage_dir(stage), name) if self.remote else str(local)

    def complete(self, stage: str) -> bool:
        return self.record(stage).is_file() and all(self.artifact(stage, n).exists() for n in ARTIFACTS[stage])
