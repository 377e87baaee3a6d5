"""dub_inbox: the scheduled entry point. Each new job file in an inbox prefix is dubbed once.

    <inbox>/            new job files (CSV, JSON lines, Parquet) land here
    <inbox>/processing/ claimed by a run
    <inbox>/done/       every clip ok (or a re-delivery of a file already taken)
    <inbox>/failed/     at least one clip failed; retry the batch run to redo only that
    <inbox>/.ledger/    one record per job file content (sha256): what became of it

A job file whose exact content was taken before is not dubbed again, whatever its
name, but still moved to done/ so the inbox empties.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import PurePosixPath

from prefect import flow

from lipdub.flows.batch import batch_config, dub_batch
from lipdub.infra import storage
from lipdub.infra.config import Config, StorageConfig
from lipdub.infra.jobs import FORMATS


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _free_name(folder: str, name: str, cfg: StorageConfig) -> str:
    """folder/name, or folder/<stem>.<n><suffix> when that is taken: nothing is overwritten."""
    candidate, n, p = storage.join(folder, name), 1, PurePosixPath(name)
    while storage.exists(candidate, cfg):
        candidate, n = storage.join(folder, f"{p.stem}.{n}{p.suffix}"), n + 1
    return candidate


def new_job_files(inbox: str, cfg: StorageConfig) -> list[str]:
    return sorted(f for f in storage.list_files(inbox, cfg) if PurePosixPath(f).suffix.lower() in FORMATS)


@flow(name="dub_inbox", flow_run_name="inbox {inbox}", log_prints=True)
def dub_inbox(inbox: str, output_prefix: str, config: Config | str | None = None) -> list[dict]:
    """Take every new job file, run dub_batch on it, file it under done/ or failed/."""
    cfg = batch_config(config)
    st = cfg.storage
    taken = []
    for path in new_job_files(inbox, st):
        name = PurePosixPath(path).name
        digest = hashlib.sha256(storage.read_bytes(path, st)).hexdigest()
        ledger = storage.join(inbox, ".ledger", f"{digest}.json")
        if storage.exists(ledger, st):
            seen = json.loads(storage.read_bytes(ledger, st))
            storage.move(path, _free_name(storage.join(inbox, "done"), name, st), st)
            print(f"{name}: same content as {seen['job_file']} ({seen['status']}); not dubbed again")
            taken.append({"job_file": name, "status": "duplicate", "of": seen["job_file"]})
            continue
        storage.write_bytes(ledger, json.dumps({"job_file": name, "status": "processing", "at": _now()}).encode(), st)
        claimed = _free_name(storage.join(inbox, "processing"), name, st)
        storage.move(path, claimed, st)
        state = dub_batch(claimed, storage.join(output_prefix, PurePosixPath(name).stem), cfg, return_state=True)
        status = "done" if state.is_completed() else "failed"
        storage.move(claimed, _free_name(storage.join(inbox, status), name, st), st)
        storage.write_bytes(ledger, json.dumps({"job_file": name, "status": status, "at": _now(), "message": state.message}).encode(), st)
        taken.append({"job_file": name, "status": status})
    return taken
