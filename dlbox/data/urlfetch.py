"""Images named by URL downloaded into a folder through the hub's downloader: the engine of `dlbox data
fetch-images` (dlbox.data.fetch_images), `coco convert --from labelbox --fetch` and Labelbox mask PNGs.

Each URL goes through :func:`dlbox.hub.fetch.pull`, the same code that fetches catalog files: mirrors first
(``DLBOX_MIRROR``; a mirror holds ``<base>/images/<host>/<path of the URL>``, the layout ``wget -x`` writes),
then the URL itself; failures of the network are retried with exponential back-off, each retry continuing the
``.part`` file with a Range request; redirects are followed only to http(s). ``s3://bucket/key`` is read with
the hub's S3 settings, ``file://`` from disk; any other scheme is refused.

- Parallel: ``workers`` threads (1-64), one progress bar over the images.
- Resumable: every finished image is appended to ``OUT/.dlbox-fetch/index.jsonl`` (URL, file, sha256, size)
  the moment it is in place; a later run skips those without a request and continues the ``.part`` files of the
  rest. Killing the process loses at most the bytes of its last chunk.
- Checked: a file that is not an image (an HTML error page), that is truncated (JPEGs decoded, PNG CRCs
  checked, as ``dlbox data build`` does), larger than ``max_bytes``, or answered with an HTTP error is listed
  with its reason and deleted; the others are kept.
- Deduplicated: one download per distinct URL; images with the same content (sha256) are kept once, every URL
  mapping to the first one's file (in source order, so the result does not depend on thread timing).
- Offline (``DLBOX_OFFLINE=1``): nothing goes to the network: what is not already here (or in a local-folder
  mirror, or a ``file://`` URL) is listed as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write_text
from dlbox.data.folders import IMAGE_EXTENSIONS, check_image

SCHEMES = ("http", "https", "s3", "file")
STATE = ".dlbox-fetch"  # OUT/.dlbox-fetch/{index.jsonl, parts/}
# PIL format -> the extension a fetched image gets when its URL has none
EXTENSION_OF = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp", "WEBP": "webp", "MPO": "jpg"}
DEFAULT_MAX_MB = 50.0


@dataclass
class Want:
    """One URL to fetch, and the file name it should get (an extension is added from the content if missing)."""

    url: str
    name: str
    key: str = ""  # the URL without its signature (see url_key); filled in by fetch_urls


@dataclass
class Fetched:
    """What happened to the URLs of one fetch: ``files`` maps each URL that is here to its file name."""

    files: dict[str, str] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    failed: list[dict[str, str]] = field(default_factory=list)  # {"url", "name", "reason"}
    missing: list[dict[str, str]] = field(default_factory=list)  # offline: {"url", "name"}
    downloaded: int = 0  # fetched by this run
    present: int = 0  # already here from an earlier run (no request made)
    duplicates: list[dict[str, str]] = field(default_factory=list)  # {"url", "same_as"}
    bytes: int = 0
    offline: bool = False


class _TooLarge(Exception):
    pass


# --- URLs and names -------------------------------------------------------------------------------------
def scheme_of(url: str) -> str:
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", url)
    return m.group(1).lower() if m else ""


def refused(url: str) -> str | None:
    """Why ``url`` is not fetched, or None."""
    s = scheme_of(url)
    if not s or len(s) == 1:  # no scheme, or a Windows drive letter
        return "not a URL (expected http://, https://, s3:// or file://)"
    if s not in SCHEMES:
        return f"refused: {s}: URLs are not fetched (only http, https, s3 and file)"
    if s in ("http", "https") and not urlsplit(url).netloc:
        return "not a URL (no host)"
    return None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, default: str = "image") -> str:
    """A plain file name from the last part of a path or URL: no folders, no leading dots, no odd characters."""
    base = unquote(text.replace("\\", "/").rstrip("/").rpartition("/")[2])
    base = _UNSAFE.sub("_", base).lstrip(".")[:120]
    return base or default


def name_from_url(url: str) -> str:
    return safe_name(urlsplit(url).path)


# query parameters of signed URLs (S3, CloudFront, GCS, Azure SAS): they change with every export of the same
# image, so they are not part of what identifies it (for resuming) and are never shown
_SIGNING = re.compile(r"(?i)^(x-amz-.*|x-goog-.*|signature|expires|key-pair-id|policy|token|access_token|"
                      r"awsaccesskeyid|googleaccessid|sig|se|sp|sv|sr|st|spr|skoid|sktid|skt|ske|sks|skv)$")  # fmt: skip


def url_key(url: str) -> str:
    """``url`` without the parameters of its signature: the same image behind a freshly signed URL has the same key."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _SIGNING.match(k)]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def shown(url: str) -> str:
    """A URL safe to print: no user:password@, no signature."""
    from dlbox.hub.settings import redact

    return redact(url)


def _stem_ext(name: str) -> tuple[str, str]:
    p = Path(name)
    return (p.stem, p.suffix) if p.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS else (name, "")


def _unique_names(wants: list[Want], index: dict[str, dict[str, Any]]) -> list[Want]:
    """One Want per distinct URL key, in order, with file names unique by stem (case-insensitive): a URL fetched
    before keeps its file name; a later URL whose name is taken (here or by an earlier fetch into the folder) gets
    ``<stem>-<8 hex of its URL>``. Decided before any download, so reruns agree."""
    taken = {_stem_ext(r["file"])[0].lower(): k for k, r in index.items()}
    seen: set[str] = set()
    out = []
    for w in wants:
        key = url_key(w.url)
        if key in seen:
            continue
        seen.add(key)
        if key in index:
            out.append(Want(w.url, index[key]["file"], key))
            continue
        stem, ext = _stem_ext(safe_name(w.name) if w.name else name_from_url(w.url))
        if taken.get(stem.lower(), key) != key:
            stem = f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        taken[stem.lower()] = key
        out.append(Want(w.url, stem + ext, key))
    return out


def _mirror_location(base: str, url: str) -> str | None:
    """Where a mirror keeps ``url``: ``<base>/images/<host>/<path>`` (None for URLs a mirror cannot hold)."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not parts.netloc or not path.strip("/") or any(seg in (".", "..") for seg in path.split("/")):
        return None
    rel = posixpath.join("images", parts.netloc.rpartition("@")[2], path.lstrip("/"))
    if base.startswith(("http://", "https://", "s3://")):
        return f"{base.rstrip('/')}/{rel}"
    return str(Path(base.removeprefix("file://")).expanduser() / rel)


def _sources(url: str, settings) -> list:
    from dlbox.hub import fetch

    s = scheme_of(url)
    if s == "file":
        return [fetch.Source("local", unquote(urlsplit(url).path), None)]
    out = []
    if s in ("http", "https"):
        for base in settings.mirrors:
            kind = fetch._kind(base)
            loc = _mirror_location(base, url)
            if loc is None or (settings.offline and kind != "local"):
                continue
            out.append(fetch.Source(kind, loc, base))
    if not settings.offline:
        out.append(fetch.Source("s3" if s == "s3" else "http", url, None))
    return out


# --- the state of a fetch into a folder -----------------------------------------------------------------
def _state(images_dir: Path) -> Path:
    return images_dir.parent / STATE if images_dir.name == "images" else images_dir / STATE


def _read_index(path: Path) -> dict[str, dict[str, Any]]:
    """URL key -> record; a torn last line (the process was killed while writing it) is ignored."""
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("key"), str) and isinstance(rec.get("file"), str):
            out[rec["key"]] = rec
    return out


class _Progress:
    """What the hub's pull functions report to (``progress(n)`` per chunk, ``.stop``): counts the bytes of one
    file and stops it when it grows past ``limit``."""

    def __init__(self, stop: threading.Event, limit: int | None, start: int = 0):
        self.stop, self.limit, self.n = stop, limit, start

    def __call__(self, n: int) -> None:
        from dlbox.hub import fetch

        if self.stop.is_set():
            raise fetch.Stopped()
        self.n += n
        if self.limit is not None and self.n > self.limit:
            raise _TooLarge()


def _identify(path: Path) -> tuple[str | None, str | None]:
    """(extension for its format, None) or (None, why it is not a usable image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            fmt = im.format
    except UnidentifiedImageError:
        with open(path, "rb") as fh:
            head = fh.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
            return None, "not an image (an HTML page)"
        return None, "not an image" + (" (empty)" if not head else "")
    except OSError as e:
        return None, f"not a readable image ({str(e)[:80]})"
    ext = EXTENSION_OF.get(fmt or "")
    if ext is None:
        return None, f"unsupported image format {fmt} (jpg, png, bmp, webp)"
    return ext, None


def _checked(part: Path, key: str, want_name: str) -> tuple[Path | None, str | None, str | None]:
    """(the checked file, its final name, None), or (None, None, why it is not a usable image: it is deleted)."""
    ext, why = _identify(part)
    if why is not None:
        part.unlink(missing_ok=True)
        return None, None, why
    name = want_name if Path(want_name).suffix.lower().lstrip(".") in IMAGE_EXTENSIONS else f"{want_name}.{ext}"
    checked = part.parent / f"{key}{Path(name).suffix.lower()}"
    os.replace(part, checked)
    why = check_image(checked)
    if why is None:
        return checked, name, None
    checked.unlink(missing_ok=True)
    if why.startswith("unreadable image"):
        why = "truncated or damaged image" + why.removeprefix("unreadable image")
    return None, None, why


def _fetch_one(w: Want, images_dir: Path, parts: Path, settings, stop: threading.Event,
               max_bytes: int | None) -> dict[str, Any]:  # fmt: skip
    """Pull one URL into ``parts``, check it, move it into ``images_dir``. Returns a record: ``{"url", "file",
    "sha256", "size"}`` or ``{"url", "name", "reason"}`` (``"missing": True`` offline)."""
    from dlbox.hub import cache, fetch
    from dlbox.hub.catalog import HubFile

    key = hashlib.sha1(w.key.encode()).hexdigest()[:20]
    part = parts / f"{key}.part"
    srcs = _sources(w.url, settings)
    if not srcs:
        return {"url": w.url, "name": w.name, "reason": "offline (DLBOX_OFFLINE=1)", "missing": True}
    tried: list[str] = []
    f = HubFile(name=w.name, url=w.url)
    checked = name = None
    for n, src in enumerate(srcs):
        progress = _Progress(stop, max_bytes, part.stat().st_size if part.exists() else 0)
        where = f"mirror {src.shown(settings)}: " if src.mirror else ""
        try:
            fetch.pull(src, part, f, settings, progress)
        except _TooLarge:
            part.unlink(missing_ok=True)
            return {"url": w.url, "name": w.name, "reason": f"{where}too large (more than {max_bytes / 1e6:g} MB)"}
        except fetch.NotFound as e:
            tried.append(f"{where}not found ({e})")
            continue
        except fetch.SourceFailed as e:
            tried.append(f"{where}{e}")
            continue
        checked, name, why = _checked(part, key, w.name)
        if why is None:
            break
        if not src.mirror or n == len(srcs) - 1:
            return {"url": w.url, "name": w.name, "reason": f"{where}{why}"}
        tried.append(f"{where}{why}")  # a bad copy in a mirror: the next source may have a good one
    if checked is None:
        if settings.offline:
            return {"url": w.url, "name": w.name, "reason": "offline: " + "; ".join(tried), "missing": True}
        return {"url": w.url, "name": w.name, "reason": "; ".join(tried) or "no source"}
    digest = cache.digests(checked)["sha256"]
    size = checked.stat().st_size
    dest = images_dir / name
    if dest.exists() and cache.digests(dest)["sha256"] != digest:  # never replace a file this fetch did not make
        checked.unlink(missing_ok=True)
        return {"url": w.url, "name": w.name, "reason": f"{dest} exists and is another file (move it away to fetch "
                "this one)"}  # fmt: skip
    os.replace(checked, dest)
    return {"key": w.key, "url": shown(w.url), "file": name, "sha256": digest, "size": size}


def fetch_urls(wants: list[Want], images_dir: str | Path, workers: int = 8, retries: int | None = None,
               max_bytes: int | None = int(DEFAULT_MAX_MB * 1e6), desc: str = "fetch images") -> Fetched:  # fmt: skip
    """Fetch ``wants`` into ``images_dir`` (parallel, resumable, checked, deduplicated; see the module doc).
    One URL failing never stops the others; the result lists what failed and why. One fetch at a time writes
    into a folder (a second one is refused: two appending to one ``.part`` would corrupt it)."""
    import fcntl

    if not 1 <= workers <= 64:
        raise UserError(f"workers must be 1 to 64, got {workers}")
    images_dir = Path(images_dir)
    state = _state(images_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {str(state)!r}: {e.strerror}", "choose a writable --out") from None
    with open(state / ".lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another fetch is writing into {str(images_dir)!r}",
                            "let it finish (or stop it), then run this again: it continues where that one stopped") from None  # fmt: skip
        return _fetch_urls(wants, images_dir, workers, retries, max_bytes, desc)


def _fetch_urls(wants: list[Want], images_dir: Path, workers: int, retries: int | None, max_bytes: int | None,
                desc: str) -> Fetched:  # fmt: skip
    from dlbox.base.progress import bar
    from dlbox.hub import settings as hub_settings

    settings = hub_settings.load()
    if retries is not None:
        settings = hub_settings.with_overrides(settings, retries=retries)
    state = _state(images_dir)
    parts = state / "parts"
    result = Fetched(offline=settings.offline)
    index_path = state / "index.jsonl"
    index = _read_index(index_path)
    asked = wants
    wants = _unique_names(wants, index)
    order = {w.key: i for i, w in enumerate(wants)}
    todo: list[Want] = []
    for w in wants:
        why = refused(w.url)
        if why:
            result.failed.append({"url": shown(w.url), "name": w.name, "reason": why, "key": w.key})
        else:
            todo.append(w)
    if todo:
        try:
            images_dir.mkdir(parents=True, exist_ok=True)
            parts.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create {str(images_dir)!r}: {e.strerror}", "choose a writable --out") from None
    done: dict[str, dict[str, Any]] = {}
    pending = []
    for w in todo:
        rec = index.get(w.key)
        p = images_dir / rec["file"] if rec else None
        if rec and p.is_file() and p.stat().st_size == rec.get("size"):
            done[w.key] = rec
            result.present += 1
        else:
            pending.append(w)
    stop = threading.Event()
    lock = threading.Lock()
    errors: list[BaseException] = []
    if pending:
        with bar(len(todo), desc, unit="img", initial=len(todo) - len(pending)) as pbar, \
                open(index_path, "a", encoding="utf-8") as log_fh:  # fmt: skip
            pool = ThreadPoolExecutor(max_workers=min(workers, len(pending)))
            futures = {pool.submit(_fetch_one, w, images_dir, parts, settings, stop, max_bytes): w for w in pending}
            try:
                for fut in as_completed(futures):
                    w = futures[fut]
                    try:
                        rec = fut.result()
                    except UserError as e:  # a full disk or a read-only folder: stop everything
                        errors.append(e)
                        stop.set()
                        continue
                    except Exception as e:  # noqa: BLE001 - one URL's surprise must not lose the others
                        rec = {"reason": f"{type(e).__name__}: {str(e)[:120]}"}
                    if "file" in rec:
                        with lock:
                            log_fh.write(json.dumps(rec) + "\n")
                            log_fh.flush()
                        done[w.key] = rec
                        result.downloaded += 1
                        result.bytes += int(rec["size"])
                    elif rec.get("missing"):
                        result.missing.append({"url": shown(w.url), "name": w.name, "key": w.key})
                    else:
                        result.failed.append({"url": shown(w.url), "name": w.name, "reason": rec["reason"], "key": w.key})
                    pbar.update(1)
            except KeyboardInterrupt:
                stop.set()  # the threads stop at their next chunk; .part files and the index stay for a rerun
                for fut in futures:
                    fut.cancel()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    if errors:
        raise errors[0]
    # content duplicates: the first URL (in source order) keeps its file, the others point at it
    url_of = {w.key: w.url for w in wants}
    first_of: dict[str, str] = {}
    changed = False
    for key in sorted(done, key=lambda k: order[k]):
        rec = done[key]
        canon = first_of.setdefault(rec["sha256"], key)
        if canon != key:
            keep = done[canon]["file"]
            if rec["file"] != keep:
                (images_dir / rec["file"]).unlink(missing_ok=True)
                done[key] = dict(rec, file=keep, duplicate_of=shown(url_of[canon]))
                changed = True
            result.duplicates.append({"url": shown(url_of[key]), "same_as": shown(url_of[canon])})
    for w in asked:  # every URL asked for, under its own spelling (signed URLs of one image share a file)
        rec = done.get(url_key(w.url))
        if rec is not None:
            result.files[w.url] = rec["file"]
            result.sha256[w.url] = rec["sha256"]
    if changed or (pending and index_path.exists()):
        kept = {**index, **done}
        atomic_write_text(index_path, "".join(json.dumps(r) + "\n" for r in kept.values()))
    if parts.is_dir() and not any(parts.iterdir()):
        parts.rmdir()
    for rows in (result.failed, result.missing):
        rows.sort(key=lambda r: order.get(r["key"], 0))
        for r in rows:
            r.pop("key", None)
    return result


# --- reporting ---------------------------------------------------------------------------------------
def summary(got: Fetched, urls: int) -> dict[str, Any]:
    return {"urls": urls, "fetched": got.downloaded, "present": got.present, "bytes": got.bytes,
            "duplicates": got.duplicates, "failed": got.failed, "missing": got.missing, "offline": got.offline,
            "ok": not got.failed and not got.missing}  # fmt: skip


def render_failures(r: dict[str, Any], limit: int = 20) -> list[str]:
    lines = []
    if r["failed"]:
        lines.append(f"{len(r['failed'])} failed (the others are usable):")
        lines += [f"  {f['url']}: {f['reason']}" for f in r["failed"][:limit]]
        if len(r["failed"]) > limit:
            lines.append(f"  ... and {len(r['failed']) - limit} more (--json lists them all)")
    if r["missing"]:
        lines.append(f"offline (DLBOX_OFFLINE=1): {len(r['missing'])} image(s) missing, nothing was downloaded:")
        lines += [f"  {m['url']}" for m in r["missing"][:limit]]
        if len(r["missing"]) > limit:
            lines.append(f"  ... and {len(r['missing']) - limit} more (--json lists them all)")
        lines.append("  run again online (unset DLBOX_OFFLINE), or put them in a local mirror (DLBOX_MIRROR=DIR)")
    return lines
