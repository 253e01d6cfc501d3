"""The built-dataset format: its version and shard naming, shared by the writer (``build``) and the reader
(``images.load_built``)."""

from __future__ import annotations

import re

FORMAT_VERSION = 1
SHARD_NAME = re.compile(r"(train|val)-\d{6}\.tar")
