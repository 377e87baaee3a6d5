"""Run a stage at most once per cache key, writing its directory atomically.

A stage's key hashes its name, code version, config section and the fingerprints of
what it reads (content hashes of user files, nonces of upstream stages). A re-run
with the same key returns the stored record; deleting a stage's files or changing
its config reruns it and, through the nonce, every stage after it.
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

from lipdub.infra.layout import RECORD, ClipLayout

R = TypeVar("R", bound=BaseModel)

# Bump a stage's version when its code changes what it writes.
STAGE_VERSIONS: dict[str, int] = {
    "probe": 1,
    "audio_clean": 1,
    "face_detect": 2,
    "stabilize": 2,
    "generate": 5,
    "enhance": 2,
    "blend": 1,
    "remux": 2,
    "drift": 2,
    "sync_analysis": 1,
    "repair": 3,
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


def run_stage(layout: ClipLayout, stage: str, config_hash: str, inputs: list[str], record_type: type[R], produce: Callable[[Path], R]) -> StageResult:
    """Return the cached record for this key, or call produce(tmp_dir) and publish tmp_dir."""
    key = stage_key(stage, config_hash, inputs)
    if layout.complete(stage):
        stored = json.loads(layout.record(stage).read_text())
        if stored.get("key") == key:
            return StageResult(record_type.model_validate(stored["record"]), f"{key}:{stored['nonce']}", True, 0.0)
    final = layout.stage_dir(stage)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{stage}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    started = time.perf_counter()
    try:
        record = produce(tmp)
        nonce = uuid.uuid4().hex[:12]
        (tmp / RECORD).write_text(json.dumps({"key": key, "nonce": nonce, "record": record.model_dump(mode="json")}, indent=1))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return StageResult(record, f"{key}:{nonce}", False, time.perf_counter() - started)
