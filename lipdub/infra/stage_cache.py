"""Run a stage at most once per cache key, writing its directory atomically.

A stage's key hashes its name, code version, config section and the fingerprints of
what it reads (content hashes of user files, nonces of upstream stages). A re-run
with the same key returns the stored record; deleting a stage's files or changing
its config reruns it and, through the nonce, every stage after it.

With a remote work dir the remote copy is the one that lasts: a stage missing from
local scratch but stored remotely under the same key is downloaded instead of rerun
(another machine, or a cleared scratch), and every stage made here is uploaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from lipdub.infra import storage
from lipdub.infra.config import StorageConfig
from lipdub.infra.layout import RECORD, ClipLayout

R = TypeVar("R", bound=BaseModel)
MEMO_RECORD = "memo.json"

# Bump a stage's version when its code changes what it writes.
STAGE_VERSIONS: dict[str, int] = {
    "probe": 2,
    "audio_clean": 1,
    "face_detect": 2,
    "stabilize": 4,
    "generate": 35,
    "enhance": 6,
    "blend": 4,
    "remux": 2,
    "drift": 21,
    "sync_analysis": 20,
    "repair": 23,
}


@dataclass(frozen=True)
class StageResult:
    record: BaseModel
    fingerprint: str  # what later stages hash: key + nonce
    cached: bool
    seconds: float


def stage_key(stage: str, config_hash: str, inputs: list[str]) -> str:
    payload = json.dumps([stage, STAGE_VERSIONS[stage], config_hash, inputs])
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def video_memo_key(stage: str, config_hash: str, video_digest: str, upstream_keys: list[str]) -> str:
    """The key of a stage that reads the source video alone: the same for every dub of it."""
    return stage_key(stage, config_hash, [f"video:{video_digest}", *upstream_keys])


def through_video_memo(memo: Path, record_type: type[R], produce: Callable[[Path], R], remote: str | None = None, storage_cfg: StorageConfig | None = None) -> Callable[[Path], R]:
    """produce(out), or a copy of what it wrote for another dub of the same video.

    A stage that reads only the source video (face_detect, stabilize) gives every dub of
    it the same files; a video dubbed into five languages would otherwise find its faces
    and landmarks five times. What produce writes is kept in `memo` (with its record in
    MEMO_RECORD), whole or not at all: dubs of one video may run at once. With a remote
    work dir the memo is mirrored at `remote`, so a dub run from another machine's
    scratch finds it too."""
    def produce_or_copy(out: Path) -> R:
        kept_here = (memo / MEMO_RECORD).is_file()
        kept_there = remote is not None and storage.exists(storage.join(remote, MEMO_RECORD), storage_cfg)
        if not kept_here and kept_there:
            _keep_whole(memo, lambda partial: storage.download_dir(remote, partial, storage_cfg))
        elif kept_here and remote is not None and not kept_there:
            storage.upload_dir(memo, remote, last=[MEMO_RECORD], cfg=storage_cfg)
        if (memo / MEMO_RECORD).is_file():
            for item in memo.iterdir():
                if item.name != MEMO_RECORD:
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, out / item.name)
            return record_type.model_validate_json((memo / MEMO_RECORD).read_text())
        record = produce(out)

        def fill(partial: Path) -> None:
            shutil.copytree(out, partial)
            (partial / MEMO_RECORD).write_text(record.model_dump_json())

        _keep_whole(memo, fill)
        if remote is not None:
            storage.upload_dir(memo, remote, last=[MEMO_RECORD], cfg=storage_cfg)
        return record

    return produce_or_copy


def _keep_whole(memo: Path, fill: Callable[[Path], None]) -> None:
    """Make `memo` by fill(partial folder) and one rename; if another dub of the video kept
    it first, theirs stays (the same files)."""
    partial = memo.with_name(f".{memo.name}.{uuid.uuid4().hex}")
    fill(partial)
    try:
        partial.rename(memo)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)


def _stored(layout: ClipLayout, stage: str, key: str) -> dict | None:
    """The local record.json, if the stage is complete and was made under this key."""
    if layout.complete(stage):
        stored = json.loads(layout.record(stage).read_text())
        if stored.get("key") == key:
            return stored
    return None


def _remote_key(url: str, storage_cfg: StorageConfig | None) -> str | None:
    try:
        return json.loads(storage.read_text(storage.join(url, RECORD), storage_cfg)).get("key")
    except FileNotFoundError:
        return None


def run_stage(layout: ClipLayout, stage: str, config_hash: str, inputs: list[str], record_type: type[R], produce: Callable[[Path], R], storage_cfg: StorageConfig | None = None) -> StageResult:
    """Return the cached record for this key (local, else remote), or call produce(tmp_dir),
    publish tmp_dir and mirror it to the remote work dir."""
    key = stage_key(stage, config_hash, inputs)
    stored = _stored(layout, stage, key)
    if remote := layout.remote_stage_dir(stage):
        remote_has_it = _remote_key(remote, storage_cfg) == key
        if stored is None and remote_has_it:
            storage.download_dir(remote, layout.stage_dir(stage), storage_cfg)
            stored = _stored(layout, stage, key)
        elif stored is not None and not remote_has_it:
            storage.upload_dir(layout.stage_dir(stage), remote, last=[RECORD], cfg=storage_cfg)
    if stored is not None:
        return StageResult(record_type.model_validate(stored["record"]), f"{key}:{stored['nonce']}", True, 0.0)
    started = time.perf_counter()
    with storage.whole_dir(layout.stage_dir(stage)) as tmp:
        record = produce(tmp)
        nonce = uuid.uuid4().hex[:12]
        (tmp / RECORD).write_text(json.dumps({"key": key, "nonce": nonce, "record": record.model_dump(mode="json")}, indent=1))
    if remote:
        storage.upload_dir(layout.stage_dir(stage), remote, last=[RECORD], cfg=storage_cfg)
    return StageResult(record, f"{key}:{nonce}", False, time.perf_counter() - started)
