"""The dlbox hub: a catalog of datasets and pretrained models, checksummed downloads through mirrors and a
cache, offline use, and object storage (see docs/hub.md).

Other parts of dlbox call :func:`resolve_weights` for ``--weights hub:NAME`` and read entries with
``dlbox.hub.catalog.get(name)``. Heavy imports (requests, boto3, torchvision) happen only when needed.
"""

from __future__ import annotations

from pathlib import Path


def resolve_weights(spec: str) -> Path:
    """``hub:NAME`` -> the local path of that model's file, fetched through the cache, mirrors and offline
    rules; a UserError (unknown name with near matches, missing file and where to put it) otherwise."""
    from dlbox.hub.weights import resolve_weights as resolve

    return resolve(spec)


__all__ = ["resolve_weights"]
