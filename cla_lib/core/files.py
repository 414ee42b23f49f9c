"""Atomic writes: readers see the old file (or directory) or the whole new one, never half of it.

Caches and results are read by other processes while they are written (a second chapter, a second `cla rerun`), so
everything this library writes goes through a temporary name in the same folder and one `os.replace`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: str | Path):
    """Yield a temporary path beside `path`; when the block finishes, move it to `path` in one rename (on an error,
    remove it). Any writer that takes a file name writes atomically through it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the whole new one, never half of it."""
    with atomic_file(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


@contextmanager
def building(directory: Path):
    """Held while this process builds `directory` (trains an organism into the cache): a second process building
    the same one waits here and then finds it built, instead of training it twice. Once held, the temporary folders
    of a build that was killed (`save_atomically`'s ``.NAME.*``, which nothing else would remove) are removed. The
    lock is the kernel's (`flock`): a killed holder releases it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for orphan in directory.parent.glob(f".{directory.name}.*"):
                if orphan.is_dir():
                    shutil.rmtree(orphan, ignore_errors=True)
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def save_atomically(directory: Path, write) -> Path:
    """Run `write(temporary_directory)`, then move the finished directory into place in one rename."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        write(temporary)
        if directory.exists():  # another process finished first; theirs is identical
            shutil.rmtree(temporary)
        else:
            os.replace(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return directory


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """The JSON objects of a JSONL file with their line numbers (blank lines skipped). The one reader of the
    library's JSONL files: what it refuses it names by file and line (ValueError), so a user knows what to fix."""
    rows = []
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}:{number}: not UTF-8 text (byte {error.start + 1} of the line); save the file "
                                 "as UTF-8") from None
            if not line.strip():
                continue
            try:
                value = json.loads(line.rstrip())  # columns count within the line
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON line ({error.msg}, column {error.colno})") from None
            if not isinstance(value, dict):
                raise ValueError(f"{path}:{number}: each line must be a JSON object, not a {type(value).__name__}")
            rows.append((number, value))
    return rows


def cache_root() -> Path:
    """Where the library caches what it builds (trained organisms, converted GGUF checkpoints): $CLA_CACHE, else
    ~/.cache/cla_lib."""
    return Path(os.environ.get("CLA_CACHE", Path.home() / ".cache" / "cla_lib"))


def sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes (an organism's weights: the same configuration may train other bytes on
    another machine)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
