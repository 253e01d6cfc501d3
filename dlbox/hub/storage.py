"""Object storage and local trees behind one small interface: list, download, upload.

S3 means any S3-compatible store (AWS, MinIO, Ceph, QingStor, moto): endpoint, region and keys come from
:mod:`dlbox.hub.settings`. Custom endpoints use path-style addressing, which every compatible store
understands. Errors become one-line UserErrors that never contain a key.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dlbox.base.errors import UserError
from dlbox.hub.settings import HubSettings, redact

CHUNK = 1 << 20
# boto3 uploads files of this size or more in parts of this size; the same figure recomputes the ETag of a
# local file (see etag_of) so an unchanged file is recognised without uploading it.
PART_SIZE = 64 << 20
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,62}$")


def is_s3(location: str) -> bool:
    return str(location).startswith("s3://")


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str  # no leading or trailing "/"

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_s3(url: str) -> S3Url:
    rest = str(url)[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise UserError(f"{redact(url)!r} is not a valid s3://BUCKET/PREFIX", "e.g. s3://my-bucket/datasets")
    return S3Url(bucket, prefix.strip("/"))


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def client(settings: HubSettings):
    """A boto3 S3 client for these settings (shared: boto3 clients are thread-safe)."""
    s3 = settings.s3
    key = (s3.endpoint_url, s3.region, s3.access_key_id, s3.secret_access_key, s3.session_token,
           settings.connect_timeout, settings.read_timeout, settings.retries)  # fmt: skip
    with _clients_lock:
        if key in _clients:
            return _clients[key]
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise UserError("s3:// needs boto3, which is not installed", "pip install boto3") from None
        cfg = Config(
            connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
            retries={"max_attempts": settings.retries + 1, "mode": "standard"},
            s3={"addressing_style": "path"} if s3.endpoint_url else {},
            # many S3-compatible stores reject the newer default checksum headers
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
        )  # fmt: skip
        kw = {"endpoint_url": s3.endpoint_url, "region_name": s3.region or "us-east-1", "config": cfg}
        if s3.access_key_id:
            kw.update(aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key,
                      aws_session_token=s3.session_token)  # fmt: skip
        c = boto3.session.Session().client("s3", **kw)
        _clients[key] = c
        return c


def error_code(e: Exception) -> str | None:
    resp = getattr(e, "response", None)
    return (resp or {}).get("Error", {}).get("Code") if isinstance(resp, dict) else None


def is_not_found(e: Exception) -> bool:
    return error_code(e) in ("NoSuchKey", "404", "NotFound")


def user_error(e: Exception, what: str, settings: HubSettings) -> UserError:
    """A botocore exception as a one-line error (keys masked)."""
    from botocore import exceptions as bx

    where = f" at {settings.s3.endpoint_url}" if settings.s3.endpoint_url else ""
    secrets = settings.s3.secrets()
    if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
        return UserError(f"{what}: no S3 credentials",
                         "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or access_key_id and secret_access_key "
                         "in the [s3] table of $DLBOX_HOME/config.toml")  # fmt: skip
    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return UserError(redact(f"{what}: cannot reach the S3 endpoint{where} ({e})", secrets),
                         "check DLBOX_S3_ENDPOINT (or endpoint_url in [s3]) and the network")  # fmt: skip
    code = error_code(e)
    if code in ("NoSuchBucket",):
        return UserError(f"{what}: the bucket does not exist{where}", "create it first, or check the s3:// URL")
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"):
        return UserError(f"{what}: access denied ({code}){where}",
                         "check the S3 keys (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or [s3] in config.toml)")  # fmt: skip
    if is_not_found(e):
        return UserError(f"{what}: not found{where}")
    return UserError(redact(f"{what}: S3 error {code or type(e).__name__}{where}: {e}", secrets))


def etag_of(path: Path, part_size: int = PART_SIZE) -> str:
    """The ETag S3 gives this file when boto3 uploads it with our part size: the md5 of a single-part upload,
    else md5(concatenated part md5s)-N."""
    size = path.stat().st_size
    if size < part_size:
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()
    parts = []
    with open(path, "rb") as fh:
        while True:
            h = hashlib.md5(usedforsecurity=False)
            left = part_size
            while left and (chunk := fh.read(min(CHUNK, left))):
                h.update(chunk)
                left -= len(chunk)
            if left == part_size:
                break
            parts.append(h.digest())
    return f"{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"


# --- stores for sync and mirror -------------------------------------------------------------------------
@dataclass
class Obj:
    key: str  # relative to the store's root, "/"-separated
    size: int
    mtime: float  # seconds since the epoch (S3: LastModified)
    etag: str | None = None
    sha256: str | None = None  # S3 metadata that `dlbox hub mirror` writes


def safe_relpath(key: str) -> PurePosixPath:
    """A remote key as a relative path that cannot leave the destination (no "..", no absolute path)."""
    p = PurePosixPath(key)
    if not key or key.startswith("/") or "\\" in key or any(part in ("..", ".", "") for part in key.split("/")):
        raise UserError(f"refusing object key {key!r}: it would be written outside the destination",
                        "keys must be relative paths without '..'")  # fmt: skip
    return p


class LocalStore:
    def __init__(self, root: str | Path):
        self.root = Path(str(root).removeprefix("file://")).expanduser()
        self.skipped_links: list[str] = []

    def __str__(self) -> str:
        return str(self.root)

    def list(self) -> dict[str, Obj]:
        out: dict[str, Obj] = {}
        if not self.root.exists():
            return out
        if not self.root.is_dir():
            raise UserError(f"{str(self.root)!r} is not a directory", "sync copies directory trees")
        for dirpath, dirnames, filenames in os.walk(self.root):
            d = Path(dirpath)
            for name in list(dirnames):
                if (d / name).is_symlink():  # never follow links out of the tree
                    dirnames.remove(name)
                    self.skipped_links.append(str((d / name).relative_to(self.root)))
            for name in filenames:
                p = d / name
                rel = p.relative_to(self.root).as_posix()
                if p.is_symlink() or not p.is_file():
                    self.skipped_links.append(rel)
                    continue
                if name.startswith(".") and name.endswith((".part", ".tmp")):
                    continue  # our own unfinished writes
                st = p.stat()
                out[rel] = Obj(rel, st.st_size, st.st_mtime)
        return out

    def path(self, key: str) -> Path:
        return self.root.joinpath(*safe_relpath(key).parts)

    def download(self, key: str, dest: Path, progress: Callable[[int], None]) -> None:
        _copy(self.path(key), dest, progress)

    def upload(self, src: Path, key: str, progress: Callable[[int], None], mtime: float | None = None) -> None:
        dest = self.path(key)
        _copy(src, dest, progress)
        if mtime is not None:
            os.utime(dest, (mtime, mtime))


def _copy(src: Path, dest: Path, progress: Callable[[int], None]) -> None:
    """Copy through a temporary file in the destination directory, renamed when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    with open(src, "rb") as fi, open(tmp, "wb") as fo:
        while chunk := fi.read(CHUNK):
            fo.write(chunk)
            progress(len(chunk))
        fo.flush()
        os.fsync(fo.fileno())
    shutil.copystat(src, tmp)
    os.replace(tmp, dest)


class S3Store:
    def __init__(self, url: str, settings: HubSettings):
        self.url = parse_s3(url)
        self.settings = settings
        self.client = client(settings)

    def __str__(self) -> str:
        return str(self.url)

    def _err(self, e: Exception, what: str) -> UserError:
        return user_error(e, what, self.settings)

    def list(self) -> dict[str, Obj]:
        from botocore.exceptions import BotoCoreError, ClientError

        out: dict[str, Obj] = {}
        prefix = self.url.prefix + "/" if self.url.prefix else ""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.url.bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    rel = o["Key"][len(prefix):]
                    if not rel or rel.endswith("/"):
                        continue  # "directory" markers
                    out[rel] = Obj(rel, int(o["Size"]), o["LastModified"].timestamp(), o.get("ETag", "").strip('"'))
        except (ClientError, BotoCoreError) as e:
            raise self._err(e, f"cannot list {self.url}") from None
        return out

    def head(self, key: str) -> Obj | None:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self.url.key(key)
        try:
            r = self.client.head_object(Bucket=self.url.bucket, Key=full)
        except ClientError as e:
            if is_not_found(e) or error_code(e) == "404":
                return None
            raise self._err(e, f"cannot read s3://{self.url.bucket}/{full}") from None
        except BotoCoreError as e:
            raise self._err(e, f"cannot read s3://{self.url.bucket}/{full}") from None
        return Obj(key, int(r["ContentLength"]), r["LastModified"].timestamp(), r.get("ETag", "").strip('"'),
                   (r.get("Metadata") or {}).get("sha256"))

    def _transfer_config(self):
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, use_threads=False)

    def download(self, key: str, dest: Path, progress: Callable[[int], None]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        safe_relpath(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        full = self.url.key(key)
        try:
            self.client.download_file(self.url.bucket, full, str(tmp), Callback=progress, Config=self._transfer_config())
        except (ClientError, BotoCoreError) as e:
            tmp.unlink(missing_ok=True)
            raise self._err(e, f"cannot download s3://{self.url.bucket}/{full}") from None
        os.replace(tmp, dest)

    def upload(self, src: Path, key: str, progress: Callable[[int], None], metadata: dict[str, str] | None = None) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self.url.key(key)
        try:
            self.client.upload_file(str(src), self.url.bucket, full, Callback=progress, Config=self._transfer_config(),
                                    ExtraArgs={"Metadata": metadata} if metadata else None)  # fmt: skip
        except (ClientError, BotoCoreError) as e:
            raise self._err(e, f"cannot upload to s3://{self.url.bucket}/{full}") from None

    def copy_from(self, other: S3Store, key: str, progress: Callable[[int], None]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        src = {"Bucket": other.url.bucket, "Key": other.url.key(key)}
        full = self.url.key(key)
        try:
            self.client.copy(src, self.url.bucket, full, Callback=progress, Config=self._transfer_config())
        except (ClientError, BotoCoreError) as e:
            raise self._err(e, f"cannot copy to s3://{self.url.bucket}/{full}") from None


def open_store(location: str, settings: HubSettings) -> LocalStore | S3Store:
    if is_s3(location):
        return S3Store(location, settings)
    if "://" in location and not location.startswith("file://"):
        raise UserError(f"{redact(location)!r}: sync copies between local directories and s3:// only",
                        "e.g. dlbox hub sync data/ s3://bucket/data")  # fmt: skip
    return LocalStore(location)


def iter_chunks(body, size: int = CHUNK) -> Iterator[bytes]:
    while chunk := body.read(size):
        yield chunk
