"""Fixtures of the data tests that serve images: a loopback HTTP server (ImageServer), moto's S3 (the hub's
fixtures), an isolated DLBOX_HOME (``hub_isolated``, opt-in) and a few learnable shapes-det scenes."""

from __future__ import annotations

import pytest

from tests.data.serving import ImageServer, make_scenes
from tests.hub.conftest import isolate_hub, moto_endpoint, s3  # noqa: F401  (moto's S3 server and a fresh bucket)


@pytest.fixture
def hub_isolated(tmp_path, monkeypatch):
    return isolate_hub(tmp_path, monkeypatch)


@pytest.fixture
def server():
    s = ImageServer()
    yield s
    s.close()


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> dict:
    """12 shapes-det images (128-160 px, learnable) with their boxes: {"files": {name: png bytes}, "data": coco}."""
    return make_scenes(tmp_path_factory.mktemp("scenes"))
