"""Getting catalog files into the cache: mirrors in order, then upstream; resumable, retried, verified.

For each file the sources are: every mirror base, in the configured order (``<base>/<entry>/<file>``: an
http(s) URL, ``s3://bucket/prefix`` or a local directory), then the upstream URL. A source that does not
have the file (404, NoSuchKey, missing) is skipped at once; a failing one (5xx, timeout, cut connection) is
retried with exponential backoff, each retry continuing the ``.part`` file with an HTTP Range request. What
arrives is verified before it is renamed into the cache; a file with the wrong hash is deleted and the next
source tried. When every source fails, the error names the file, each URL tried and why, and the mirrors.
Offline (``DLBOX_OFFLINE=1``) only the cache and local-directory mirrors are used.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from dlbox import __version__
from dlbox.base.errors import UserError
from dlbox.base.fileio import write_all
from dlbox.hub import cache, storage
from dlbox.hub.catalog import Entry, HubFile
from dlbox.hub.settings import HubSettings, redact

CHUNK = 1 << 20


class NotFound(Exception):
    """The source does not have the file: try the next one without retrying."""


class SourceFailed(Exception):
    """The source failed for good (after retries, or an error retrying cannot fix)."""


class _Transient(Exception):
    """Worth another attempt: 5xx, timeout, connection cut."""


class Stopped(Exception):
    pass


@dataclass(frozen=True)
class Source:
    kind: str  # http, s3 or local
    location: str  # URL, s3:// URL or path
    mirror: str | None  # the mirror base it came from; None for upstream

    def shown(self, settings: HubSettings) -> str:
        return redact(self.location, settings.s3.secrets())


def _kind(location: str) -> str:
    if location.startswith(("http://", "https://")):
        return "http"
    if storage.is_s3(location):
        return "s3"
    return "local"


def mirror_location(base: str, entry: Entry, f: HubFile) -> str:
    if _kind(base) == "local":
        return str(Path(base.removeprefix("file://")).expanduser() / entry.name / f.name)
    return f"{base.rstrip('/')}/{entry.name}/{f.name}"


def sources(entry: Entry, f: HubFile, settings: HubSettings) -> list[Source]:
    out = []
    for base in settings.mirrors:
        if settings.offline and _kind(base) != "local":
            continue  # offline: nothing that needs the network
        out.append(Source(_kind(base), mirror_location(base, entry, f), base))
    if f.url and not settings.offline:
        out.append(Source(_kind(f.url), f.url, None))
    return out


# --- progress shared by the download threads ------------------------------------------------------------
class Progress:
    def __init__(self, total: int | None, desc: str):
        from dlbox.base.progress import bar

        self.bar = bar(total, desc, unit="B", unit_scale=True, unit_divisor=1024)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def __call__(self, n: int) -> None:
        if self.stop.is_set():
            raise Stopped()
        with self.lock:
            self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


# --- pulling one source into the .part file -------------------------------------------------------------
def _backoff(settings: HubSettings, attempt: int, progress: Progress) -> None:
    delay = min(settings.backoff * 2**attempt, 30.0)
    if delay > 0 and progress.stop.wait(delay):
        raise Stopped()


def http_session():
    """A requests session that follows redirects only to http(s) URLs: a redirect to ``file://``, ``ftp://`` or
    any other scheme fails the source at once (SourceFailed, never retried) instead of being followed."""
    import requests

    class Session(requests.Session):
        def get_redirect_target(self, resp):
            target = super().get_redirect_target(resp)
            if target is not None:
                scheme = urlsplit(urljoin(resp.url, target)).scheme.lower()
                if scheme not in ("http", "https"):
                    raise SourceFailed(f"HTTP {resp.status_code} redirect to a {scheme}: URL refused "
                                       "(only http and https redirects are followed)")  # fmt: skip
            return target

    return Session()


def _pull_http(url: str, part: Path, expected: int | None, settings: HubSettings, progress: Progress) -> None:
    import requests
    import urllib3

    last = "no attempt"
    with http_session() as session:
        for attempt in range(settings.retries + 1):
            have = part.stat().st_size if part.exists() else 0
            if expected is not None and have > expected:
                part.unlink()  # longer than the file can be: start again
                progress(-have)
                have = 0
            headers = {"Accept-Encoding": "identity", "User-Agent": f"dlbox/{__version__}"}
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                with session.get(url, headers=headers, stream=True, allow_redirects=True,
                                 timeout=(settings.connect_timeout, settings.read_timeout)) as r:  # fmt: skip
                    code = r.status_code
                    if code == 416 and have:
                        total = r.headers.get("Content-Range", "").rpartition("/")[2]
                        if total.isdigit() and int(total) == have:
                            return  # the part was already complete
                        part.unlink(missing_ok=True)
                        progress(-have)
                        last = "HTTP 416 for the resumed range; starting again"
                        continue
                    if code in (404, 410):
                        raise NotFound(f"HTTP {code} {r.reason}")
                    if code in (401, 403):
                        raise SourceFailed(f"HTTP {code} {r.reason} (access refused)")
                    if code == 429 or code >= 500:
                        raise _Transient(f"HTTP {code} {r.reason}")
                    if code not in (200, 206):
                        raise SourceFailed(f"unexpected HTTP {code} {r.reason}")
                    mode = "ab"
                    if code == 200 or not have:
                        if have:
                            progress(-have)  # the server ignored Range: the whole file comes again
                        mode, have = "wb", 0
                    elif not r.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                        part.unlink(missing_ok=True)
                        progress(-have)
                        raise _Transient(f"the server resumed at the wrong place ({r.headers.get('Content-Range')})")
                    length = r.headers.get("Content-Length")
                    want = int(length) if length and length.isdigit() else None
                    got = 0
                    # read1: whatever has arrived, so a stall or cut keeps every byte received for the resume
                    read = getattr(r.raw, "read1", r.raw.read)
                    with open(part, mode, buffering=0) as fh:
                        while chunk := read(CHUNK, decode_content=False):
                            _write(fh, chunk, part)
                            got += len(chunk)
                            progress(len(chunk))
                    if want is not None and got < want:
                        raise _Transient(f"connection closed after {have + got} of {have + want} bytes")
                    return
            except (NotFound, SourceFailed, Stopped):
                raise
            except _Transient as e:
                last = str(e)
            except requests.exceptions.ConnectTimeout:
                last = f"no connection within {settings.connect_timeout:g} s"
            except (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
                last = f"no data for {settings.read_timeout:g} s (stalled)"
            except requests.exceptions.ConnectionError as e:
                last = _short(e, "connection failed")
            except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as e:
                last = _short(e, "connection broken")
            if attempt < settings.retries:
                _backoff(settings, attempt, progress)
    raise SourceFailed(f"{last} (after {settings.retries + 1} attempts)")


def _write(fh, chunk: bytes, part: Path) -> None:
    # A full disk or a read-only cache is one line, not a retry of the download.
    write_all(fh, chunk, part, "the bytes downloaded so far are kept: the same command resumes")


def _short(e: Exception, default: str) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
        return "host not found"
    if "IncompleteRead" in text or "Connection broken" in text:
        return "connection broken mid-file"
    return f"{default} ({type(e).__name__})"


def _pull_s3(url: str, part: Path, expected: int | None, settings: HubSettings, progress: Progress) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    loc = storage.parse_s3(url)
    s3 = storage.client(settings)
    last = "no attempt"
    for attempt in range(settings.retries + 1):
        have = part.stat().st_size if part.exists() else 0
        kw = {"Bucket": loc.bucket, "Key": loc.prefix}
        if have:
            kw["Range"] = f"bytes={have}-"
        try:
            try:
                resp = s3.get_object(**kw)
            except ClientError as e:
                code = storage.error_code(e)
                if storage.is_not_found(e) or code == "NoSuchBucket":
                    raise NotFound(code) from None
                if code == "InvalidRange" and have and expected == have:
                    return
                if code == "InvalidRange":
                    part.unlink(missing_ok=True)
                    progress(-have)
                    raise _Transient("invalid resume range; starting again") from None
                raise SourceFailed(storage.user_error(e, "S3", settings).message) from None
            mode = "ab" if have and resp.get("ContentRange") else "wb"
            if mode == "wb" and have:
                progress(-have)
            with open(part, mode, buffering=0) as fh:
                for chunk in resp["Body"].iter_chunks(CHUNK):
                    _write(fh, chunk, part)
                    progress(len(chunk))
            return
        except (NotFound, SourceFailed, Stopped):
            raise
        except _Transient as e:
            last = str(e)
        except (BotoCoreError, OSError) as e:
            if type(e).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
                raise SourceFailed(storage.user_error(e, "S3", settings).message) from None
            last = redact(_short(e, "S3 transfer failed"), settings.s3.secrets())
        if attempt < settings.retries:
            _backoff(settings, attempt, progress)
    raise SourceFailed(f"{last} (after {settings.retries + 1} attempts)")


def _pull_local(path: str, part: Path, expected: int | None, progress: Progress) -> None:
    src = Path(path)
    if not src.is_file():
        raise NotFound("no such file")
    size = src.stat().st_size
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        progress(-have)
        have = 0
    with open(src, "rb") as fi, open(part, "ab" if have else "wb", buffering=0) as fo:
        fi.seek(have)
        while chunk := fi.read(CHUNK):
            _write(fo, chunk, part)
            progress(len(chunk))


def pull(src: Source, part: Path, f: HubFile, settings: HubSettings, progress: Progress) -> None:
    if src.kind == "http":
        _pull_http(src.location, part, f.size, settings, progress)
    elif src.kind == "s3":
        _pull_s3(src.location, part, f.size, settings, progress)
    else:
        _pull_local(src.location, part, f.size, progress)


# --- one file, all its sources --------------------------------------------------------------------------
def missing_error(entry: Entry, f: HubFile, settings: HubSettings, tried: list[tuple[Source, str]]) -> UserError:
    err = _missing_error(entry, f, settings, tried)
    err.file_name = f.name  # type: ignore[attr-defined]
    return err


def _missing_error(entry: Entry, f: HubFile, settings: HubSettings, tried: list[tuple[Source, str]]) -> UserError:
    where = cache.path_of(entry, f)
    add = f"dlbox hub add {entry.name} --file PATH"
    mirrors = [redact(m, settings.s3.secrets()) for m in settings.mirrors]
    if settings.offline:
        origin = f"it comes from {redact(f.url)}" if f.url else entry.manual or ""
        local = ", ".join(f"{s.shown(settings)}: {why}" for s, why in tried)
        return UserError(f"offline (DLBOX_OFFLINE=1): {f.name} of hub:{entry.name} is not in the cache"
                         + (f" nor in the local mirrors ({local})" if local else ""),
                         f"put the file at {where} or run `{add}`; {origin}".rstrip("; "))  # fmt: skip
    if tried:
        what = "; ".join(f"{'mirror' if s.mirror else 'upstream'} {s.shown(settings)}: {why}" for s, why in tried)
        hint = (f"mirrors tried: {', '.join(mirrors)}" if mirrors else "no mirrors configured (DLBOX_MIRROR or "
                "mirrors = [...] in $DLBOX_HOME/config.toml)")
        if entry.manual and not f.url:
            hint += f"; {entry.manual}"
        else:
            hint += f"; if you have the file: {add}"
        return UserError(f"cannot get {f.name} of hub:{entry.name}: {what}", hint)
    return UserError(f"{f.name} of hub:{entry.name} is not downloadable: you supply it",
                     f"{entry.manual or ''} It goes to {where} (or use `{add}`).".strip())  # fmt: skip


def fetch_one(entry: Entry, f: HubFile, settings: HubSettings, progress: Progress) -> tuple[Path, str]:
    """The verified cached path of ``f`` and where it came from ("cache" when it was already there)."""
    have = cache.verified(entry, f)
    if have is not None:
        progress(f.display_size or have.stat().st_size)
        return have, "cache"
    cache.ensure_dir(entry, f)
    final = cache.path_of(entry, f)
    with cache.file_lock(final):
        have = cache.verified(entry, f)  # another process may have finished it meanwhile
        if have is not None:
            progress(f.display_size or have.stat().st_size)
            return have, "cache"
        part = cache.part_of(final)
        tried: list[tuple[Source, str]] = []
        if part.exists():
            progress(part.stat().st_size)  # a resumed download starts where the last one stopped
        for src in sources(entry, f, settings):
            try:
                pull(src, part, f, settings, progress)
                got = part.stat().st_size
                return cache.place(entry, f, part, source=src.shown(settings)), src.shown(settings)
            except NotFound as e:
                tried.append((src, f"not found ({e})"))
            except SourceFailed as e:
                tried.append((src, str(e)))
            except cache.Mismatch as e:
                progress(-got)
                tried.append((src, f"wrong content ({e.what}); the download was deleted"))
        raise missing_error(entry, f, settings, tried)


def fetch(entry: Entry, files: list[HubFile], settings: HubSettings) -> dict[str, tuple[Path, str]]:
    """Fetch several files in parallel threads, one progress bar; {file name: (path, source)}."""
    sizes = [f.display_size for f in files]
    total = sum(sizes) if all(s is not None for s in sizes) else None
    progress = Progress(total, f"hub:{entry.name}")
    results: dict[str, tuple[Path, str]] = {}
    errors: list[BaseException] = []
    try:
        with ThreadPoolExecutor(max_workers=min(settings.workers, max(len(files), 1))) as pool:
            futures = {pool.submit(fetch_one, entry, f, settings, progress): f for f in files}
            try:
                for fut, f in futures.items():
                    try:
                        results[f.name] = fut.result()
                    except (UserError, OSError) as e:
                        errors.append(e)
            except KeyboardInterrupt:
                progress.stop.set()  # the threads stop at their next chunk; .part files stay for resuming
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        progress.close()
    if errors:
        first = errors[0]
        if isinstance(first, OSError):
            raise UserError(f"hub:{entry.name}: {first}", "check free disk space and DLBOX_HOME") from None
        if len(errors) > 1:
            others = [getattr(e, "file_name", "?") for e in errors[1:]]
            raise UserError(f"{first.message}; and {len(others)} more: {', '.join(others)}", first.hint)
        raise first
    return results


def ensure(entry: Entry, files: list[HubFile] | None = None, settings: HubSettings | None = None) -> dict[str, Path]:
    """The verified local paths of ``files`` (default: all) of ``entry``, fetched as needed."""
    from dlbox.hub import settings as hub_settings

    settings = settings or hub_settings.load()
    got = fetch(entry, list(files or entry.files), settings)
    return {name: path for name, (path, _) in got.items()}
