"""One notebook executed as myst-nb executes it (nbclient, from its own folder), in a worker process.

Its own module, importing nothing heavy: `cla_lib.book.book_cache` runs it in spawned workers, and a worker that
imported the library (torch, transformers) would spend seconds before its kernel even starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from jupyter_cache.executors.utils import single_nb_execution

TIMEOUT = 1800  # per cell, as _config.yml's execute.timeout


def execute_notebook(path: str, threads: int) -> tuple[str, float, str | None, str]:
    """Execute the notebook at `path` on a kernel with `threads` torch threads: (path, seconds, the failing cell's
    traceback or None, the executed notebook as JSON)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the kernel's torch reads it when it starts
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(notebook, cwd=str(Path(path).parent), timeout=TIMEOUT, allow_errors=False)
    return path, result.time, result.exc_string, nbformat.writes(result.nb)
