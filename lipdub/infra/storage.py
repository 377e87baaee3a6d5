"""Where lipdub's files live: a local path or any fsspec URL (s3:// through s3fs).

This is the one module that talks to fsspec. Stages always compute on local files;
remote inputs are downloaded once into a cache, finished stage directories and
outputs are uploaded. S3 has no rename, so an upload is a single put: an object
appears whole or not at all. Credentials come from the standard AWS variables or
profile (botocore finds them); the endpoint and region from StorageConfig, else
AWS_ENDPOINT_URL, so MinIO or a local test server work the same way as AWS.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import fsspec.core

from lipdub import LipdubError

if TYPE_CHECKING:
    from lipdub.infra.config import Config, StorageConfig

Location = str | Path


def is_remote(loc: Location) -> bool:
    """A URL with a scheme other than file://; everything else is a local path."""
    text = str(loc)
    return "://" in text and not text.startswith("file://")


def _local(loc: Location) -> Path:
    return Path(str(loc).removeprefix("file://"))


def _s3_options(cfg: StorageConfig | None) -> dict[str, Any]:
    options: dict[str, Any] = {"anon": bool(cfg and cfg.anon)}
    if endpoint := (cfg.endpoint_url if cfg else None) or os.environ.get("AWS_ENDPOINT_URL"):
        options["endpoint_url"] = endpoint
    if cfg and cfg.region:
        options["client_kwargs"] = {"region_name": cfg.region}
    return options


def filesystem(loc: Location, cfg: StorageConfig | None = None) -> tuple[Any, str]:
    """The fsspec filesystem for a URL and the path within it (bucket/key for S3)."""
    text = str(loc)
    options = _s3_options(cfg) if text.startswith(("s3://", "s3a://")) else {}
    return fsspec.core.url_to_fs(text, **options)


def join(base: Location, *parts: str) -> str:
    if is_remote(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(_local(base).joinpath(*parts))


def scratch_dir(config: Config) -> Path:
    """Local working copies: the work dir itself when it is local, else a scratch folder."""
    if not is_remote(config.work_dir):
        return _local(config.work_dir)
    return Path(config.storage.scratch_dir or Path(tempfile.gettempdir()) / "lipdub-scratch")


def _problem(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "access denied (check the AWS credentials)"
    return f"cannot read ({exc})"


def _remote_info(loc: Location, cfg: StorageConfig | None) -> tuple[Any, str, dict]:
    fs, path = filesystem(loc, cfg)
    fs.invalidate_cache(path)  # another machine may have written it since we last looked
    try:
        info = fs.info(path)
    except OSError as exc:
        raise LipdubError(loc, _problem(exc)) from exc
    if info.get("type") != "file":
        raise LipdubError(loc, "not a file")
    return fs, path, info


def exists(loc: Location, cfg: StorageConfig | None = None) -> bool:
    if not is_remote(loc):
        return _local(loc).exists()
    fs, path = filesystem(loc, cfg)
    fs.invalidate_cache(path)
    return fs.exists(path)


def check_input(loc: Location, cfg: StorageConfig | None = None) -> None:
    """Fail before any work if an input file or object is missing."""
    if is_remote(loc):
        _remote_info(loc, cfg)
    elif not _local(loc).is_file():
        raise LipdubError(loc, "file not found" if not _local(loc).exists() else "not a file")


def localize(loc: Location, cache_dir: Path, cfg: StorageConfig | None = None) -> Path:
    """A local path for reading: local paths as they are; a remote object downloaded once,
    cached under its URL, ETag and size so a changed object is fetched again."""
    if not is_remote(loc):
        return _local(loc)
    fs, path, info = _remote_info(loc, cfg)
    version = f"{loc}\n{info.get('ETag') or info.get('etag') or info.get('mtime')}\n{info['size']}"
    target = Path(cache_dir) / hashlib.sha256(version.encode()).hexdigest()[:16] / PurePosixPath(path).name
    if target.is_file() and target.stat().st_size == info["size"]:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part-{uuid.uuid4().hex[:8]}")
    try:
        fs.get_file(path, str(tmp))
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _check_local_destination(output: Path, inputs: list[Path]) -> None:
    for src in inputs:
        if src.exists() and output.resolve() == src.resolve():
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


def check_destination(dest: Location, inputs: Iterable[Location], cfg: StorageConfig | None = None) -> None:
    """Fail before any work if the result could not be written, or would replace an input."""
    inputs = list(inputs)
    if not is_remote(dest):
        return _check_local_destination(_local(dest), [_local(i) for i in inputs if not is_remote(i)])
    if any(str(i) == str(dest) for i in inputs):
        raise LipdubError(dest, "output would overwrite an input file")
    fs, path = filesystem(dest, cfg)
    bucket, _, key = path.partition("/")
    if not key:
        raise LipdubError(dest, "output needs an object name after the bucket")
    probe = str(PurePosixPath(path).with_name(f".{PurePosixPath(path).name}.lipdub-write-test"))
    try:  # the only sure test that a bucket exists and takes our writes is a write
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except FileNotFoundError as exc:
        raise LipdubError(dest, f"bucket {bucket} does not exist") from exc
    except PermissionError as exc:
        raise LipdubError(dest, "output is not writable (access denied; check the AWS credentials)") from exc
    except OSError as exc:
        raise LipdubError(dest, f"output is not writable ({exc})") from exc


def publish_file(local: Path, dest: Location, cfg: StorageConfig | None = None) -> None:
    """Put a finished file at dest so that a reader sees all of it or nothing."""
    if is_remote(dest):
        fs, path = filesystem(dest, cfg)
        try:
            fs.put_file(str(local), path)
        except OSError as exc:
            raise LipdubError(dest, f"cannot write output ({exc})") from exc
        return
    dest = _local(dest)
    tmp = dest.with_name(f".{dest.name}.lipdub-tmp")
    try:
        shutil.copyfile(local, tmp)
        tmp.replace(dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LipdubError(dest, f"cannot write output ({exc.strerror})") from exc


def upload_dir(local_dir: Path, url: str, last: Iterable[str] = (), cfg: StorageConfig | None = None) -> None:
    """Replace the remote folder with local_dir's files. Files named in `last` (relative
    paths) are removed first and put last, so their presence marks a complete upload."""
    last = set(last)
    fs, root = filesystem(url, cfg)
    fs.invalidate_cache(root)
    stale = fs.find(root)
    for doomed in ([k for k in stale if k[len(root) + 1 :] in last], [k for k in stale if k[len(root) + 1 :] not in last]):
        if doomed:
            fs.rm(doomed)
    files = {p.relative_to(local_dir).as_posix(): p for p in sorted(Path(local_dir).rglob("*")) if p.is_file()}
    for batch in ([n for n in files if n not in last], [n for n in files if n in last]):
        if batch:
            fs.put([str(files[n]) for n in batch], [f"{root}/{n}" for n in batch])
    fs.invalidate_cache(root)


@contextlib.contextmanager
def whole_dir(final: Path) -> Iterator[Path]:
    """A temp folder beside `final` to fill; it replaces `final` only if the block ends
    well, so a reader never sees a half-written folder and a failure leaves nothing."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def download_dir(url: str, local_dir: Path, cfg: StorageConfig | None = None) -> None:
    """Fetch every object under url into local_dir, which appears whole."""
    fs, root = filesystem(url, cfg)
    fs.invalidate_cache(root)
    keys = fs.find(root)
    if not keys:
        raise FileNotFoundError(url)
    with whole_dir(local_dir) as tmp:
        targets = [tmp / k[len(root) + 1 :] for k in keys]
        for t in targets:
            t.parent.mkdir(parents=True, exist_ok=True)
        fs.get(keys, [str(t) for t in targets])


def read_bytes(loc: Location, cfg: StorageConfig | None = None) -> bytes:
    if not is_remote(loc):
        return _local(loc).read_bytes()
    fs, path = filesystem(loc, cfg)
    return fs.cat_file(path)


def read_text(loc: Location, cfg: StorageConfig | None = None) -> str:
    return read_bytes(loc, cfg).decode()


def write_bytes(loc: Location, data: bytes, cfg: StorageConfig | None = None) -> None:
    """Write a small file whole (local: temp name then rename; remote: one put)."""
    if is_remote(loc):
        fs, path = filesystem(loc, cfg)
        fs.pipe_file(path, data)
        return
    path = _local(loc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    tmp.replace(path)


def list_files(folder: Location, cfg: StorageConfig | None = None) -> list[str]:
    """Files directly inside folder (not in its subfolders); none when it does not exist."""
    if not is_remote(folder):
        path = _local(folder)
        return sorted(str(p) for p in path.iterdir() if p.is_file()) if path.is_dir() else []
    fs, path = filesystem(folder, cfg)
    fs.invalidate_cache(path)
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    protocol = str(folder).split("://", 1)[0]
    return sorted(f"{protocol}://{e['name']}" for e in entries if e["type"] == "file")


def move(src: Location, dest: Location, cfg: StorageConfig | None = None) -> None:
    """Rename within one store (local folder or bucket)."""
    if is_remote(src) != is_remote(dest):
        raise ValueError(f"cannot move between local and remote storage: {src} -> {dest}")
    if not is_remote(src):
        _local(dest).parent.mkdir(parents=True, exist_ok=True)
        os.replace(_local(src), _local(dest))
        return
    fs, path = filesystem(src, cfg)
    fs.mv(path, filesystem(dest, cfg)[1])
