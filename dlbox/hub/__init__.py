"""The dlbox hub: a catalog of datasets and pretrained models, checksummed downloads through mirrors and a
cache, offline use, and object storage (see docs/hub.md). The hub is catalog, cache, downloads, storage and
mirrors only: ``--weights hub:NAME`` is parsed by ``dlbox.models.weights.resolve_weights`` (which fetches through
``dlbox.hub.catalog.model_entry`` and ``dlbox.hub.fetch.ensure``); converters live in ``dlbox.convert``.
Heavy imports (requests, boto3, torchvision) happen only when needed.
"""
