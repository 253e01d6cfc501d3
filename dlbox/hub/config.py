"""The arguments of the `dlbox hub` commands, declared for dlbox.cliutil.Command (torch-free, like the parser)."""

from __future__ import annotations

from dataclasses import dataclass

from dlbox.config import REQUIRED, opt, positional

NAME = "a catalog name (see `dlbox hub list`)"


@dataclass(kw_only=True)
class ListArgs:
    task: str | None = opt(None, "only this task: classify, detect, speech, face, text", metavar="T")


@dataclass(kw_only=True)
class InfoArgs:
    name: str = positional(NAME, metavar="NAME")


@dataclass(kw_only=True)
class DownloadArgs:
    name: str = positional(NAME, metavar="NAME")
    to: str | None = opt(None, "also place the files (or, with --extract, their contents) here", metavar="DIR", output="dir")
    extract: bool = opt(False, "extract .tar, .tar.gz, .tgz and .zip files")
    only: list[str] | None = opt(None, "only this file of the entry (repeatable)", action="append", metavar="FILE")


@dataclass(kw_only=True)
class AddArgs:
    name: str = positional("the catalog entry the file belongs to", metavar="NAME")
    file: str = opt(REQUIRED, "the file", metavar="PATH")
    as_name: str | None = opt(None, "which of the entry's files it is (default: by its name)", flag="--as", metavar="FILE")
    link: bool = opt(False, "hard-link it into the cache instead of copying (same disk)")


@dataclass(kw_only=True)
class MirrorArgs:
    names: list[str] = positional("catalog names", metavar="NAME")
    to: str = opt(REQUIRED, "s3://bucket/prefix or a directory; files go to DEST/NAME/FILE", metavar="DEST", output="dir")


@dataclass(kw_only=True)
class SyncArgs:
    src: str = positional("a directory or s3://bucket/prefix", metavar="SRC")
    dst: str = positional("a directory or s3://bucket/prefix", metavar="DST", output="dir")
    dry_run: bool = opt(False, "only say what would be copied")


@dataclass(kw_only=True)
class ConvertArgs:
    spec: str = positional("slim-NAME from `dlbox hub list`, or a checkpoint path", metavar="NAME|PATH")
    out: str = opt(REQUIRED, "the .safetensors file to write", metavar="FILE", output="file")
