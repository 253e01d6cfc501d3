"""Shared by the fetch-images and Labelbox tests (fixtures in tests/data/conftest.py): a loopback HTTP server that
also redirects, an isolated DLBOX_HOME as the hub's tests have, and learnable images from the shapes-det generator."""

from __future__ import annotations

import http.server
import io
import json
from pathlib import Path

from PIL import Image

from tests.hub.conftest import FileServer


class ImageServer(FileServer):
    """The hub's test file server, plus ``redirects[path] = location`` (a 302 to anywhere, file:// included)."""

    def __init__(self):
        super().__init__()
        self.redirects: dict[str, str] = {}

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        if h.path in self.redirects:
            self.requests.append((h.path, h.headers.get("Range")))
            h.send_response(302)
            h.send_header("Location", self.redirects[h.path])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        super()._handle(h)

    def count(self, path: str) -> int:
        return len(self.hits(path))


def make_scenes(out: Path) -> dict:
    """12 shapes-det images (128-160 px, learnable) with their boxes: {"files": {name: png bytes}, "data": coco}."""
    from dlbox.data import coco
    from dlbox.data.shapes_det import write_shapes_det

    write_shapes_det(out, seed=11, n_images=12, size_range=(128, 160), obj_range=(16, 40), objects=(2, 3),
                     split=(1.0, 0.0, 0.0))  # fmt: skip
    data = coco.load(out / "annotations" / "train.json")
    files = {im["file_name"]: (out / "images" / im["file_name"]).read_bytes() for im in data["images"]}
    return {"files": files, "data": data}


def jpeg(png: bytes, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in.</body></html>\n"


def truncated_jpeg() -> bytes:
    """A JPEG of noise cut in the middle of its scan data: the headers are whole, the pixels are not."""
    import numpy as np

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(buf, format="JPEG")
    data = buf.getvalue()
    return data[: len(data) // 2]


def result_json(res) -> dict:
    assert res.stdout.strip(), res.stderr
    return json.loads(res.stdout)


def boxes_by_file(data: dict) -> dict[str, list[tuple[str, list[float]]]]:
    """file stem -> sorted [(class, [x, y, w, h])]."""
    from dlbox.data import coco

    names = coco.categories_by_id(data)
    by_image = coco.anns_by_image(data)
    return {Path(im["file_name"]).stem: sorted((names[a["category_id"]], [float(v) for v in a["bbox"]])
                                               for a in by_image[im["id"]]) for im in data["images"]}  # fmt: skip
