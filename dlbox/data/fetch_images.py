"""`dlbox data fetch-images`: images named by URL (a CSV of URLs, a Labelbox export, a COCO json with
``coco_url``/``flickr_url``) downloaded into ``OUT/images/`` through the hub's downloader (the engine, with
what it guarantees, is :mod:`dlbox.data.urlfetch`)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError, close_matches
from dlbox.data.urlfetch import (
    DEFAULT_MAX_MB,
    Want,
    fetch_urls,
    name_from_url,
    render_failures,
    safe_name,
    summary,
)

FORMATS = ("auto", "csv", "labelbox", "coco")
URL_COLUMNS = ("url", "urls", "image_url", "image", "image_urls", "link", "src", "source", "row_data",
               "labeled data", "coco_url")  # fmt: skip


# --- sources: CSV of URLs, Labelbox export, COCO json ---------------------------------------------------
def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".ndjson", ".jsonl"):
        return "labelbox"
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            return "labelbox"  # an NDJSON export named .json
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read {str(path)!r}: {e}") from None
        if isinstance(data, dict) and isinstance(data.get("images"), list):
            return "coco"
        return "labelbox"
    raise UserError(f"cannot tell the format of {str(path)!r} from its name",
                    "pass --from csv, labelbox or coco")  # fmt: skip


def _looks_like_url(text: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text.strip()))


def csv_urls(path: Path, column: str | None = None) -> list[Want]:
    """The URLs of a CSV (or a text file, one URL a line): the only column, the column named ``column``, or the
    one whose header is a usual URL name (url, image_url, ...). A header row is recognised and skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {str(path)!r}: {e}") from None
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = [r for r in csv.reader(text.splitlines(), dialect) if r and any(c.strip() for c in r)]
    if not rows:
        raise UserError(f"{str(path)!r} holds no rows", "one image URL a line, or a column of URLs")
    header = [c.strip() for c in rows[0]]
    has_header = not any(_looks_like_url(c) for c in header)
    if column is not None:
        if not has_header:
            raise UserError(f"{str(path)!r} has no header row, so there is no column {column!r}",
                            "leave out --column when the file is one URL a line")  # fmt: skip
        lower = [h.lower() for h in header]
        if column.lower() not in lower:
            raise UserError(f"{str(path)!r} has no column {column!r}",
                            close_matches(column, header) or f"its columns: {', '.join(header)}")  # fmt: skip
        idx = lower.index(column.lower())
    elif len(header) == 1:
        idx = 0
    else:
        lower = [h.lower() for h in header]
        named = [i for i, h in enumerate(lower) if h in URL_COLUMNS] if has_header else []
        data_row = rows[1] if has_header and len(rows) > 1 else rows[0]
        with_urls = [i for i, c in enumerate(data_row) if _looks_like_url(c)]
        cands = named or with_urls
        if len(cands) != 1:
            raise UserError(f"{str(path)!r} has {len(header)} columns; which holds the URLs?",
                            f"pass --column NAME (columns: {', '.join(header)})" if has_header
                            else "give the file a header row and pass --column NAME")  # fmt: skip
        idx = cands[0]
    out = []
    for row in rows[1:] if has_header else rows:
        if idx < len(row) and row[idx].strip():
            url = row[idx].strip()
            out.append(Want(url, name_from_url(url)))
    if not out:
        raise UserError(f"{str(path)!r} holds no URLs in column {header[idx]!r}" if has_header else
                        f"{str(path)!r} holds no URLs")  # fmt: skip
    return out


def coco_urls(data: dict[str, Any]) -> dict[int, Want]:
    """Image id -> what to fetch, from ``coco_url`` (else ``flickr_url``); named by the image's file_name."""
    out = {}
    for im in data["images"]:
        url = im.get("coco_url") or im.get("flickr_url")
        if url:
            out[int(im["id"])] = Want(str(url), safe_name(str(im.get("file_name") or "")) or name_from_url(str(url)))
    return out


# --- the command ------------------------------------------------------------------------------------------
def fetch_images(source: str | Path, out: str | Path, fmt: str = "auto", column: str | None = None, workers: int = 8,
                 retries: int | None = None, max_mb: float = DEFAULT_MAX_MB) -> dict[str, Any]:  # fmt: skip
    """Fetch the images ``source`` names into ``OUT/images/``; for a COCO json also write
    ``OUT/annotations/<name>.json`` with each fetched image's ``file_name`` (images that could not be fetched
    are left out, with their boxes). Returns the summary ``--json`` prints."""
    from dlbox.base.outputs import check_output

    path = Path(source)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist", "pass a CSV of URLs, a Labelbox export or a COCO json")
    if fmt not in FORMATS:
        raise UserError(f"unknown source format {fmt!r}", f"one of {', '.join(FORMATS)}")
    out = Path(out)
    check_output(out, "dir", what="--out")
    if fmt == "auto":
        fmt = detect_format(path)
    if column is not None and fmt != "csv":
        raise UserError(f"--column is for a CSV of URLs, and {str(path)!r} is read as {fmt}", "leave out --column")
    data = None
    labelbox_info: dict[str, Any] = {}
    if fmt == "csv":
        wants = csv_urls(path, column)
    elif fmt == "labelbox":
        from dlbox.data import labelbox

        rows = labelbox.read_rows(path)
        wants, labelbox_info = labelbox.image_wants(rows)
    else:
        from dlbox.data import coco

        data = coco.load(path)
        by_id = coco_urls(data)
        labelbox_info = {"without_url": len(data["images"]) - len(by_id)}
        wants = list(by_id.values())
    if not wants:
        raise UserError(f"{str(path)!r} names no image URLs",
                        "a CSV column of URLs, Labelbox 'Labeled Data' / data_row.row_data, or COCO coco_url")  # fmt: skip
    got = fetch_urls(wants, out / "images", workers=workers, retries=retries,
                     max_bytes=int(max_mb * 1e6), desc=f"fetch {path.name}")  # fmt: skip
    result = summary(got, len({w.url for w in wants}))
    result.update({"source": str(path), "format": fmt, "out": str(out), "images_dir": str(out / "images")})
    result.update({k: v for k, v in labelbox_info.items() if v})
    if data is not None:
        from dlbox.data import coco

        kept = {}
        for iid, w in coco_urls(data).items():
            if w.url in got.files:
                kept[iid] = got.files[w.url]
        part = coco.restrict(data, set(kept))
        for im in part["images"]:
            im["file_name"] = kept[int(im["id"])]
        target = out / "annotations" / f"{path.stem}.json"
        coco.save(part, target)
        result["annotations"] = {"file": str(target), "images": len(part["images"]),
                                 "annotations": len(part["annotations"]),
                                 "left_out": len(data["images"]) - len(part["images"])}  # fmt: skip
    return result


def render(r: dict[str, Any]) -> str:
    dup = f", {len(r['duplicates'])} duplicate(s) kept once" if r["duplicates"] else ""
    lines = [f"{r['images_dir']}: {r['fetched']} fetched ({r['bytes'] / 1e6:.1f} MB), {r['present']} already there{dup}"
             f" of {r['urls']} URL(s)"]  # fmt: skip
    if r.get("annotations"):
        a = r["annotations"]
        lines.append(f"wrote {a['file']}: {a['images']} images, {a['annotations']} boxes"
                     + (f" ({a['left_out']} images without a fetched file left out)" if a["left_out"] else ""))  # fmt: skip
    lines += render_failures(r)
    if r["failed"] and not r["missing"]:
        lines.append("run the same command again to retry them (what is done is not fetched again)")
    return "\n".join(lines)
