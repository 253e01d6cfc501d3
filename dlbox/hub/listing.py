"""`dlbox hub list` and `dlbox hub info`: the catalog as rows and as one entry's details, with cache state."""

from __future__ import annotations

from typing import Any

from dlbox.hub import cache, catalog, fetch
from dlbox.hub import settings as hub_settings
from dlbox.hub.catalog import Entry, ModelEntry
from dlbox.hub.download import _size


def _headline_metrics(e: Entry) -> dict[str, float]:
    """The published figures, flattened: {"ImageNet-1K acc@1": 69.758, ...}."""
    if not isinstance(e, ModelEntry):
        return {}
    return {f"{ds} {k}": v for ds, vals in e.metrics.items() for k, v in vals.items()}


def rows(task: str | None = None, extra=None) -> list[dict[str, Any]]:
    index = cache.read_index()
    out = []
    for e in catalog.list_entries(task, extra=extra):
        cached = sum(cache.is_cached(e, f, index) for f in e.files)
        out.append({
            "name": e.name, "kind": e.kind, "task": e.task, "title": e.title, "size": e.total_size,
            "files": len(e.files), "cached_files": cached, "manual": bool(e.manual),
            "metrics": _headline_metrics(e), "origin": e.origin,
        })  # fmt: skip
    return out


def render_rows(rs: list[dict[str, Any]]) -> str:
    table = [("NAME", "KIND", "TASK", "SIZE", "CACHED", "TITLE")]
    for r in rs:
        cached = "yes" if r["cached_files"] == r["files"] else (f"{r['cached_files']}/{r['files']}" if r["cached_files"] else "-")
        title = r["title"] + (" [manual]" if r["manual"] and "manual" not in r["title"] else "")
        table.append((r["name"], r["kind"], r["task"], _size(r["size"]), cached, title))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5] for row in table]
    return "\n".join(lines) + f"\n{len(rs)} entries (details: dlbox hub info NAME)"


def info(name: str, extra=None) -> dict[str, Any]:
    e = catalog.get(name, extra)
    settings = hub_settings.load()
    index = cache.read_index()
    d = catalog.to_dict(e)
    files = []
    for f, fd in zip(e.files, d["files"], strict=True):
        rec = index.get(cache.key_of(e, f))
        files.append({
            **fd, "cached": cache.is_cached(e, f, index), "path": str(cache.path_of(e, f)),
            "recorded_sha256": (rec or {}).get("sha256"),
            "sources": [s.shown(settings) for s in fetch.sources(e, f, settings)],
        })  # fmt: skip
    d["files"] = files
    d["size"] = e.total_size
    return d


def render_info(d: dict[str, Any]) -> str:
    lines = [f"hub:{d['name']}  {d['title']}", f"  kind: {d['kind']}   task: {d['task']}",
             f"  {d['description']}", f"  licence: {d['license']}", f"  homepage: {d['homepage']}"]  # fmt: skip
    if d.get("manual"):
        lines.append(f"  manual: {d['manual']}")
    if d["kind"] == "model":
        lines.append(f"  architecture: {d['architecture']}   loader: {d['loader']}")
        if d.get("loader_note"):
            lines.append(f"  ({d['loader_note']})")
        bits = []
        if d.get("input_size"):
            bits.append(f"input {d['input_size']} px")
        if d.get("num_classes"):
            bits.append(f"{d['num_classes']} classes" + (" (index 0 = background)" if d.get("background_class") else ""))
        if d.get("num_params"):
            bits.append(f"{d['num_params'] / 1e6:.2f} M parameters")
        if d.get("gflops"):
            bits.append(f"{d['gflops']} GFLOPS")
        if bits:
            lines.append("  " + ", ".join(bits))
        for ds, vals in (d.get("metrics") or {}).items():
            lines.append(f"  {ds}: " + ", ".join(f"{k} {v}" for k, v in vals.items()))
        t = d.get("transforms")
        if t:
            lines.append(f"  transforms: resize {t['resize_size']}, crop {t['crop_size']}, mean {t['mean']}, std {t['std']}")
    lines.append(f"  files ({_size(d['size'])}):")
    for f in d["files"]:
        h = (f"sha256 {f['sha256']}" if f["sha256"] else f"sha256 prefix {f['sha256_prefix']}" if f["sha256_prefix"]
             else f"md5 {f['md5']}" if f["md5"] else "no hash published")  # fmt: skip
        if not f["sha256"] and f.get("recorded_sha256") and not f["sha256_prefix"]:
            h += f" (recorded sha256 {f['recorded_sha256']})"
        lines.append(f"    {f['name']}  {_size(f['size'] or f['approx_size'])}  {h}")
        lines.append(f"      {'cached at' if f['cached'] else 'not cached; goes to'} {f['path']}")
        for s in f["sources"]:
            lines.append(f"      source: {s}")
    return "\n".join(lines)
