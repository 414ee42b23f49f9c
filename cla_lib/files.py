"""Atomic writes: readers see the old file (or directory) or the whole new one, never half of it.

Caches and results are read by other processes while they are written (a second chapter, a second `cla rerun`), so
everything this library writes goes through a temporary name in the same folder and one `os.replace`.
"""

from __future__ import annotations

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
