"""Catalog, downloads, cache and object storage (see the hub issue)."""
