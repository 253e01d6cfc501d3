"""Progress bars (quiet when stdout is not a terminal) and log lines on stderr."""

from __future__ import annotations

import os
import sys


def interactive() -> bool:
    """Bars only for a person at a terminal; DLBOX_PROGRESS=1/0 forces them on/off."""
    forced = os.environ.get("DLBOX_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false")
    return sys.stdout.isatty() and sys.stderr.isatty()


def bar(total: int | None, desc: str, enabled: bool = True, unit: str = "it", **kw):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
        disable=not (enabled and interactive()), **kw,
    )  # fmt: skip


def log(msg: str) -> None:
    """A human line on stderr (stdout is kept for results and --json)."""
    from tqdm.auto import tqdm

    tqdm.write(msg, file=sys.stderr)


def log_main(msg: str) -> None:
    """``log`` on global rank 0 only: code that every worker of a distributed job runs says a thing once."""
    if os.environ.get("RANK", "0") == "0":
        log(msg)
