"""The book's chapters executed once per state of what determines their outputs, two at a time.

The build renders from jupyter-cache (myst-nb's ``execute_notebooks: cache``), whose own key is a notebook's code
cells only. This module folds in the rest — the library's source, the pinned dependencies, the interpreter, and
every cached organism's weights — as one *library key* stored beside the cache: when it changes, every chapter runs
again; when only prose changed, nothing does. `execute` runs the chapters that need it in parallel worker processes,
each kernel on its share of the cores, and stores them where the Sphinx build finds them (`cla_lib.book.sphinx_ext`
checks the key too, so a bare ``jupyter-book build .`` never renders stale outputs).

    python -m cla_lib.book.book_cache [--jobs 2] [--force] [--glue FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

from cla_lib.book.execution import execute_notebook
from cla_lib.core.files import sha256, write_atomic
from cla_lib.organism.base import cache_root
from cla_lib.book.rerun import glued_values

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "_build" / ".jupyter_cache"  # where myst-nb puts it when _config.yml names none
KEY_FILE = "cla-library-key.txt"
TIMINGS_FILE = "cla-timings.json"  # seconds per chapter, kept across clears: longest first next time


def book_chapters(root: Path = ROOT) -> list[Path]:
    """Every notebook the table of contents lists, in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = [entry["file"] for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    return [root / f"{name}.ipynb" for name in files if (root / f"{name}.ipynb").exists()]


def library_key(root: Path = ROOT) -> str:
    """A digest of everything outside a notebook's code cells that its outputs depend on."""
    digest = hashlib.sha256(f"{sys.version}\n".encode())
    sources = sorted(path for path in (root / "cla_lib").rglob("*")
                     if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc")
    for path in [root / "pyproject.toml", *sources]:
        digest.update(f"{path.relative_to(root)}\n".encode())
        digest.update(path.read_bytes())
    for name in ("CLA_ORGANISM_SIZE", "CLA_SEEDS"):
        digest.update(f"{name}={os.environ.get(name, '')}\n".encode())
    organisms = cache_root() / "organisms"
    for weights in sorted(organisms.glob("*/*.safetensors")) if organisms.is_dir() else []:
        digest.update(f"{weights.relative_to(organisms)}\n".encode())
        digest.update(sha256(weights).encode())
    return digest.hexdigest()


def results_folder(chapter: Path) -> Path:
    """Where a chapter executed from book/ publishes its downloads (`cla_lib.book.publish`)."""
    return Path(os.environ.get("CLA_RESULTS", chapter.parent / "results")) / chapter.stem


def invalidate(cache_path: Path = CACHE, chapters: list[Path] | None = None, *, force: bool = False,
               report=print) -> None:
    """Drop every cached chapter when the library key changed (or `force`), and any chapter whose published
    results are missing (the rendered page links them)."""
    cache_path = Path(cache_path)
    cache = get_cache(cache_path)
    key, stored = library_key(), cache_path / KEY_FILE
    if force or not stored.exists() or stored.read_text().strip() != key:
        if cache.list_cache_records():
            report("==> the library, its pins or the organisms changed: every chapter executes again"
                   if not force else "==> forced: every chapter executes again")
        timings = (cache_path / TIMINGS_FILE).read_text() if (cache_path / TIMINGS_FILE).exists() else None
        cache.clear_cache()  # removes the folder
        write_atomic(cache_path / KEY_FILE, key + "\n")
        if timings:
            write_atomic(cache_path / TIMINGS_FILE, timings)
    for chapter in chapters if chapters is not None else book_chapters():
        record = _cached_record(cache, chapter)
        if record is not None and not results_folder(chapter).is_dir():
            report(f"==> {chapter.name}: its results folder is missing, it executes again")
            cache.remove_cache(record.pk)


def _cached_record(cache, chapter: Path):
    try:
        return cache.match_cache_notebook(nbformat.read(chapter, as_version=4))
    except KeyError:
        return None


def execute(cache_path: Path = CACHE, *, jobs: int = 2, force: bool = False, root: Path = ROOT,
            report=print) -> dict[str, float]:
    """Execute every chapter whose outputs are not cached for this library key, `jobs` at a time (longest first,
    by the last timings), and cache them. Raises RuntimeError, with the failing cell's traceback, if one fails."""
    cache_path, chapters = Path(cache_path), book_chapters(root)
    invalidate(cache_path, chapters, force=force, report=report)
    cache = get_cache(cache_path)
    timings_path = cache_path / TIMINGS_FILE
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    pending = [chapter for chapter in chapters if _cached_record(cache, chapter) is None]
    pending.sort(key=lambda chapter: -timings.get(chapter.stem, 0.0))
    for chapter in chapters:
        if chapter not in pending:
            report(f"==> {chapter.name}: cached for this library key")
    if not pending:
        return {}
    threads = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(pending))))
    report(f"==> executing {len(pending)} chapter(s), {jobs} at a time, {threads} thread(s) each")
    started, done = time.perf_counter(), {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        running = {pool.submit(execute_notebook, str(chapter), threads) for chapter in pending}
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                chapter, seconds, error, executed = future.result()
                name = Path(chapter).name
                if error:
                    for other in running:
                        other.cancel()
                    raise RuntimeError(f"{name} failed:\n{error}")
                cache.add_nb_to_project(chapter)
                cache.cache_notebook_bundle(
                    CacheBundleIn(nbformat.reads(executed, as_version=4), chapter,
                                  data={"execution_seconds": seconds}),
                    check_validity=False, overwrite=True)
                done[Path(chapter).stem] = seconds
                report(f"==> {name} executed in {seconds:.1f} s "
                       f"({time.perf_counter() - started:.0f} s since the first started)")
    write_atomic(timings_path, json.dumps({**timings, **done}, indent=1, sort_keys=True) + "\n")
    return done


def glued(cache_path: Path = CACHE, root: Path = ROOT) -> dict[str, dict]:
    """Every chapter's glued values as the cache holds them (to compare two builds number by number)."""
    cache = get_cache(Path(cache_path))
    values = {}
    for chapter in book_chapters(root):
        record = _cached_record(cache, chapter)
        if record is not None:
            notebook = cache.get_cache_bundle(record.pk).nb
            values[chapter.stem] = glued_values(json.loads(nbformat.writes(notebook)))
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cla_lib.book.book_cache", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="chapters executed at once (default: 2, or 1 on one core)")
    parser.add_argument("--force", action="store_true", help="execute every chapter, cached or not")
    parser.add_argument("--glue", metavar="FILE", help="then write every chapter's glued values to FILE (JSON)")
    parser.add_argument("--cache", default=str(CACHE), help=f"the jupyter-cache folder (default: {CACHE})")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        execute(Path(args.cache), jobs=args.jobs, force=args.force)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.glue:
        write_atomic(args.glue, json.dumps(glued(Path(args.cache)), indent=1, sort_keys=True, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
