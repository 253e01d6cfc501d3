"""The streaming, parallel, resumable text pipeline behind `wiki2txt`, `convert`, `segment` and `prepare`.

The parent process reads the input (a dump's articles, or a text file's lines), groups items into chunks and
hands them to a process pool; results come back in input order and are appended to ``OUT.partial``. A
bounded window of chunks is in flight (``2 x workers``), so reading never runs ahead of processing: a 20 GB
dump streams in constant memory (``Pool.imap`` would read the whole input ahead in its feeder thread).

Resume: every few seconds (and when interrupted) the partial output is fsynced and ``OUT.partial.json``
records how many input items its bytes cover. Running the same command again on the same input, with the
same options, truncates the partial file to that size, skips that many items (they are still read and
parsed, which is cheap next to markup removal and segmentation) and continues. The finished file is renamed
to ``OUT`` only when complete, so ``OUT`` never holds a half corpus.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from dlbox.base import progress
from dlbox.base.errors import UserError
from dlbox.base.fileio import WriteError, atomic_write_text, write_all
from dlbox.base.outputs import check_output
from dlbox.tasks.text.steps import Steps, init_worker, processor, work

CHECKPOINT_VERSION = 1
CHECKPOINT_SECONDS = 5.0
QUIET_LOG_SECONDS = 30.0  # without a progress bar (not a terminal), a log line this often


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class TextFile:
    """A UTF-8 text file read line by line (the input of `convert` and `segment`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            what = "is a directory" if self.path.is_dir() else "does not exist"
            raise UserError(f"input {str(self.path)!r} {what}", "give a UTF-8 text file, one article or sentence a line")
        self.size = self.path.stat().st_size
        self._f = None

    def position(self) -> int:
        try:
            return self._f.tell() if self._f is not None else 0
        except (ValueError, OSError):
            return self.size

    def items(self) -> Iterator[str]:
        with open(self.path, "rb") as f:
            self._f = f
            for n, raw in enumerate(f, 1):
                try:
                    yield raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise UserError(f"{self.path}, line {n}: not UTF-8 text", "convert the file to UTF-8 first") from None

    def identity(self) -> dict:
        st = os.stat(self.path)
        return {"path": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class Checkpoint:
    """How far an interrupted run got: ``items`` input items are in the first ``bytes`` bytes of the partial."""

    key: dict
    items: int = 0
    bytes: int = 0
    lines: int = 0
    tokens: int = 0

    @staticmethod
    def paths(out: Path) -> tuple[Path, Path]:
        return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")

    @classmethod
    def load(cls, out: Path, key: dict) -> Checkpoint | None:
        """The checkpoint of an earlier run of the same job, when its partial output is intact."""
        partial, path = cls.paths(out)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if data.get("version") != CHECKPOINT_VERSION or data.get("key") != key:
            progress.log(f"note: {path.name} is from another input or other options; starting over")
            return None
        if not partial.is_file() or partial.stat().st_size < data["bytes"]:
            progress.log(f"note: {partial.name} is shorter than its checkpoint says; starting over")
            return None
        return cls(key, data["items"], data["bytes"], data["lines"], data["tokens"])

    def save(self, out: Path) -> None:
        _, path = self.paths(out)
        atomic_write_text(path, json.dumps({"version": CHECKPOINT_VERSION, "key": self.key, "items": self.items,
                                            "bytes": self.bytes, "lines": self.lines, "tokens": self.tokens}))  # fmt: skip


class _Now:
    """A finished result, for the serial path (same interface as AsyncResult)."""

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


def run(task: str, source, items: Iterator[str], steps: Steps, out: str | Path, *, workers: int | None = None,
        chunk_size: int = 64, restart: bool = False, unit: str = "articles",
        on_done: Callable[[], dict] | None = None) -> dict:  # fmt: skip
    """Process ``items`` (read from ``source``) with ``steps`` into ``out``; returns the run's figures."""
    out = check_output(out, "file", "--out")
    if out.exists() and out.resolve() == Path(source.path).resolve():
        raise UserError("--out is the input file", "write to another file")
    if chunk_size < 1:
        raise UserError(f"chunk size must be >= 1, got {chunk_size}")
    workers = workers or default_workers()
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    processor(steps)  # build the tools here first: a bad option fails before any work, and forked workers inherit them
    key = {"task": task, "input": source.identity(), "steps": steps.as_dict(), "user_dict": _file_identity(steps.user_dict)}
    partial, ckpt_path = Checkpoint.paths(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = None if restart else Checkpoint.load(out, key)
    if state is None:
        state = Checkpoint(key)
        f = open(partial, "wb", buffering=0)  # noqa: SIM115 - closed below; unbuffered: see write_all
    else:
        f = open(partial, "r+b", buffering=0)  # noqa: SIM115
        f.truncate(state.bytes)
        f.seek(state.bytes)
        progress.log(f"{task}: resuming after {state.items:,} {unit} ({state.bytes / 1e6:.1f} MB already written)")
    resumed_from = state.items
    pool = None
    if workers > 1:
        import multiprocessing as mp

        pool = mp.get_context().Pool(workers, initializer=init_worker, initargs=(steps,))
    from dlbox.engine.signals import GracefulStop

    t0 = time.perf_counter()
    last_save = last_log = t0
    done_items = 0  # this run's
    bar = progress.bar(source.size, task, unit="B", unit_scale=True, unit_divisor=1024)

    def write(result, n_items) -> None:
        nonlocal last_save, last_log, done_items
        text, n_lines, n_tokens = result.get()
        data = text.encode("utf-8")
        write_all(f, data, partial, "the text written so far is kept: the same command resumes")
        state.items += n_items
        state.bytes += len(data)
        state.lines += n_lines
        state.tokens += n_tokens
        done_items += n_items
        bar.set_postfix_str(f"{state.items:,} {unit}", refresh=False)
        bar.update(source.position() - bar.n)
        now = time.perf_counter()
        if now - last_save >= CHECKPOINT_SECONDS:
            _sync(f)
            state.save(out)
            last_save = now
        if not bar.disable or now - last_log < QUIET_LOG_SECONDS:
            return
        last_log = now
        rate = (source.position() / 1e6) / (now - t0)
        progress.log(f"{task}: {state.items:,} {unit}, {100 * source.position() / max(source.size, 1):.0f}% of "
                     f"the input, {rate:.1f} MB/s")  # fmt: skip

    stopped = False
    try:
        with GracefulStop() as stop:
            window: deque = deque()
            chunks = _chunks(islice(items, resumed_from, None), chunk_size)
            for chunk in chunks:
                if pool is None:
                    window.append((_Now(processor(steps).chunk(chunk)), len(chunk)))
                else:
                    window.append((pool.apply_async(work, ((steps, chunk),)), len(chunk)))
                while len(window) >= 2 * workers or (window and pool is None):
                    write(*window.popleft())
                if stop.requested:
                    stopped = True
                    break
            while window and not stopped:
                write(*window.popleft())
    except WriteError:
        # a full disk (or a place that became read-only): keep OUT.partial and its last checkpoint, which agree
        # (the resume truncates the partial to what the checkpoint counts), so the same command resumes
        _close(f, pool, bar)
        raise
    except UserError:
        _close(f, pool, bar)
        for p in (partial, ckpt_path):  # the input is bad: nothing worth resuming
            p.unlink(missing_ok=True)
        raise
    except BaseException:
        # A second Ctrl-C may land mid-update: keep the last checkpoint on disk, which is consistent.
        _close(f, pool, bar)
        progress.log(f"{task}: stopped after {state.items:,} {unit}; run the same command again to continue")
        raise
    if stopped:
        _close(f, pool, bar, keep=state, out=out)
        progress.log(f"{task}: stopped after {state.items:,} {unit}; run the same command again to continue")
        raise KeyboardInterrupt
    _sync(f)
    bar.update(source.size - bar.n)
    bar.refresh()  # the last bar line: the whole input, the article count and the rate
    _close(f, pool, bar)
    extra = on_done() if on_done else {}
    if state.items == 0:
        for p in (partial, ckpt_path):
            p.unlink(missing_ok=True)
        raise UserError(f"no {unit} in {source.path}{_describe(extra)}", "check that this is the right input")
    if steps.lang and state.lines == 0:
        for p in (partial, ckpt_path):
            p.unlink(missing_ok=True)
        raise UserError(f"no {steps.lang} words in any of the {state.items:,} {unit} of {source.path}",
                        "check --lang (and --keep-latin/--keep-digits for text that is not Chinese)")  # fmt: skip
    os.replace(partial, out)
    ckpt_path.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    result = {
        "output": str(out), "input": str(source.path), unit: state.items, "lines": state.lines,
        "tokens": state.tokens, "bytes_written": state.bytes, "seconds": round(seconds, 3),
        f"{unit}_per_sec": round(done_items / seconds, 1) if seconds else None,
        "tokens_per_sec": round(state.tokens / seconds, 1) if seconds and not resumed_from else None,
        "input_mb_per_sec": round(source.size / 1e6 / seconds, 2) if seconds and not resumed_from else None,
        "workers": workers, "resumed_after": resumed_from, **extra,
    }  # fmt: skip
    return result


def _describe(extra: dict) -> str:
    pages = extra.get("pages")
    if not pages:
        return ""
    return (f" ({pages} pages: {extra.get('redirects', 0)} redirects, {extra.get('other_namespaces', 0)} in other "
            f"namespaces, {extra.get('empty', 0)} empty)")  # fmt: skip


def _chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(islice(items, size)):
        yield chunk


def _sync(f) -> None:
    f.flush()
    os.fsync(f.fileno())


def _close(f, pool, bar, keep: Checkpoint | None = None, out: Path | None = None) -> None:
    if pool is not None:
        pool.terminate()
        pool.join()
    bar.close()
    if keep is not None and out is not None:
        _sync(f)
        keep.save(out)
    f.close()


def _file_identity(path: str | None) -> dict | None:
    if not path or not os.path.exists(path):
        return None
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
