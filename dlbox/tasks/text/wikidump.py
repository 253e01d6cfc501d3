"""Streaming reader of MediaWiki XML dumps (``*-pages-articles.xml.bz2``): articles, one at a time.

The dump is decompressed on the fly (bz2, gzip or plain XML, told by the magic bytes) and parsed with
``iterparse``; each ``<page>`` is cleared once read, so memory stays flat on a 20 GB dump. Tags are matched
by local name, so any export schema version (``export-0.10``, ``export-0.11``, ...) is read. Only articles
are kept: namespace 0, not a redirect (a ``<redirect>`` element or ``#REDIRECT`` text), not empty.
"""

from __future__ import annotations

import bz2
import gzip
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import ParseError, iterparse

from dlbox.base.errors import UserError

EXPORT_NS = "http://www.mediawiki.org/xml/export-"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# "#REDIRECT", and the Chinese Wikipedia's "#重定向" (either may carry a space or a colon).
_REDIRECT = re.compile(r"\s*#\s*(redirect|重定向)", re.IGNORECASE)
DOWNLOAD_HINT = "download the dump again (e.g. dlbox hub download zhwiki)"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text
    return None


def _child(elem, name: str):
    for child in elem:
        if _local(child.tag) == name:
            return child
    return None


@dataclass
class DumpStats:
    pages: int = 0
    articles: int = 0
    redirects: int = 0
    other_namespaces: int = 0
    empty: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Dump:
    """One dump file. ``articles()`` yields each article's wikitext; ``position()`` is how many bytes of the
    file (compressed) have been read, for MB/s; ``lang`` is the dump's ``xml:lang`` once reading began."""

    path: Path
    size: int = 0
    lang: str | None = None
    stats: DumpStats = field(default_factory=DumpStats)
    _raw: object = None

    def __post_init__(self):
        self.path = Path(self.path)
        if not self.path.exists():
            raise UserError(f"dump {str(self.path)!r} does not exist",
                            "give the path of a pages-articles .xml.bz2 file (dlbox hub download zhwiki)")  # fmt: skip
        if self.path.is_dir():
            raise UserError(f"dump {str(self.path)!r} is a directory, not a file", "pass the dump file (*-pages-articles.xml.bz2)")
        self.size = self.path.stat().st_size
        if self.size == 0:
            raise UserError(f"dump {str(self.path)!r} is empty", DOWNLOAD_HINT)

    def position(self) -> int:
        try:
            return self._raw.tell() if self._raw is not None else 0
        except (ValueError, OSError):
            return self.size

    def _open(self):
        raw = open(self.path, "rb")  # noqa: SIM115 - closed by articles()
        magic = raw.read(3)
        raw.seek(0)
        self._raw = raw
        if magic == b"BZh":
            return bz2.BZ2File(raw)
        if magic[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw)
        return raw

    def detect_lang(self) -> str | None:
        """The dump's ``xml:lang`` (``zh``, ``en``, ...), read from its first element only."""
        for _ in self._events(stop_at_root=True):
            pass
        return self.lang

    def articles(self) -> Iterator[str]:
        """The wikitext of each article, in dump order."""
        page_ns_names: dict[str, str] = {}
        for elem in self._events():
            name = _local(elem.tag)
            if name == "namespace":
                if elem.get("key") and elem.text:
                    page_ns_names[elem.text] = elem.get("key")
                continue
            if name != "page":
                continue
            self.stats.pages += 1
            title = _child_text(elem, "title") or ""
            ns = _child_text(elem, "ns")
            if ns is None:  # very old dumps have no <ns>: the title's prefix tells
                prefix = title.split(":", 1)[0] if ":" in title else ""
                ns = page_ns_names.get(prefix, "0")
            revision = _child(elem, "revision")
            text = (_child_text(revision, "text") if revision is not None else None) or ""
            redirect = _child(elem, "redirect") is not None or _REDIRECT.match(text) is not None
            elem.clear()
            if ns.strip() != "0":
                self.stats.other_namespaces += 1
            elif redirect:
                self.stats.redirects += 1
            elif not text.strip():
                self.stats.empty += 1
            else:
                self.stats.articles += 1
                yield text

    def _events(self, stop_at_root: bool = False):
        """The end events of the dump's elements (the root checked first); errors become UserErrors."""
        stream = self._open()
        root = None
        try:
            for event, elem in iterparse(stream, events=("start", "end")):
                if root is None:
                    root = elem
                    self._check_root(elem)
                    if stop_at_root:
                        return
                    continue
                if event == "end":
                    yield elem
                    if _local(elem.tag) == "page":
                        root.clear()  # drop the cleared pages the root still holds
            if root is None:
                raise UserError(f"{self.path} holds no XML", DOWNLOAD_HINT)
        except EOFError:
            raise UserError(f"{self.path} is truncated: the compressed stream ends early", DOWNLOAD_HINT) from None
        except (OSError, zlib.error) as e:
            raise UserError(f"{self.path} is not a readable compressed file ({e})", DOWNLOAD_HINT) from None
        except ParseError as e:
            if root is None:
                raise UserError(f"{self.path} is not a MediaWiki XML dump (not XML: {e})",
                                "give a pages-articles .xml.bz2 dump") from None  # fmt: skip
            raise UserError(f"{self.path}: the XML ends early or is malformed ({e})", DOWNLOAD_HINT) from None
        finally:
            stream.close()
            self._raw.close()

    def _check_root(self, elem) -> None:
        tag = elem.tag
        ns = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
        if _local(tag) != "mediawiki" or not ns.startswith(EXPORT_NS):
            raise UserError(
                f"{self.path} is not a MediaWiki XML dump (its root element is <{_local(tag)}>"
                f"{f' in namespace {ns}' if ns else ''}, not <mediawiki> in {EXPORT_NS}*)",
                "give a pages-articles .xml.bz2 dump",
            )
        lang = elem.get(XML_LANG)
        self.lang = lang.split("-")[0].lower() if lang else None

    def identity(self) -> dict:
        st = os.stat(self.path)
        return {"path": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
