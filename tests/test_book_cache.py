"""The book's execution cache: a prose edit executes nothing, a code or library change executes what it affects,
two chapters run at once, and a failing cell fails with its traceback (a two-chapter book in a temporary folder)."""

from __future__ import annotations

import json

import nbformat
import pytest

from cla_lib.book import book_cache

CODE = "import os, pathlib, time\nstarted = time.time()\ntime.sleep({sleep})\n" \
       "pathlib.Path('results/{name}').mkdir(parents=True, exist_ok=True)\n" \
       "from myst_nb import glue\nglue('threads', os.environ.get('OMP_NUM_THREADS'))\nglue('started', started)\n" \
       "glue('finished', time.time())\n"


def write_chapter(root, name, *, prose="Some prose.", code=None, sleep=3.0):
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {name}\n\n{prose}"),
                      nbformat.v4.new_code_cell(code or CODE.format(name=name, sleep=sleep))]
    nbformat.write(notebook, root / "book" / f"{name}.ipynb")


@pytest.fixture
def book(tmp_path, monkeypatch):
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n- chapters:\n"
                                       "  - file: book/first\n  - file: book/second\n")
    for name in ("first", "second"):
        write_chapter(tmp_path, name)
    monkeypatch.delenv("CLA_RESULTS", raising=False)
    key = {"value": "library-1"}
    monkeypatch.setattr(book_cache, "library_key", lambda root=None: key["value"])
    return tmp_path, key


def run(root, **options):
    messages = []
    done = book_cache.execute(root / "cache", root=root, report=messages.append, **options)
    return set(done), messages


def test_prose_executes_nothing_code_and_library_changes_execute_what_they_affect(book):
    root, key = book
    assert run(root, jobs=2)[0] == {"first", "second"}
    glued = book_cache.glued(root / "cache", root=root)
    # Two at a time, each kernel on its share of the cores: each started before the other finished.
    assert glued["first"]["started"] < glued["second"]["finished"]
    assert glued["second"]["started"] < glued["first"]["finished"]
    assert {values["threads"] for values in glued.values()} == {str(max(1, (__import__("os").cpu_count() or 1) // 2))}

    assert run(root)[0] == set()
    write_chapter(root, "first", prose="Other prose, same code.")
    assert run(root)[0] == set()
    write_chapter(root, "second", code=CODE.format(name="second", sleep=0.1))
    assert run(root)[0] == {"second"}

    key["value"] = "library-2"
    messages = []
    book_cache.invalidate(root / "cache", book_cache.book_chapters(root), report=messages.append)
    assert any("changed" in message for message in messages)
    assert book_cache.glued(root / "cache", root=root) == {}  # nothing cached for this key...
    assert set(json.loads((root / "cache" / book_cache.TIMINGS_FILE).read_text())) == {"first", "second"}  # ...timed
    assert run(root, jobs=1)[0] == {"first", "second"}
    assert run(root, force=True, jobs=1)[0] == {"first", "second"}

    (root / "book" / "results" / "first").rmdir()
    assert run(root, jobs=1)[0] == {"first"}
    timings = json.loads((root / "cache" / book_cache.TIMINGS_FILE).read_text())
    assert set(timings) == {"first", "second"} and timings["first"] >= 3.0


def test_a_failing_cell_fails_with_its_traceback_and_caches_nothing(book):
    root, _ = book
    write_chapter(root, "second", code="raise ValueError('planted failure')")
    with pytest.raises(RuntimeError, match="second.ipynb failed:(.|\n)*planted failure"):
        run(root, jobs=1)
    assert set(book_cache.glued(root / "cache", root=root)) <= {"first"}


def test_the_library_key_covers_source_pins_and_organisms(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "cla_lib").mkdir(parents=True)
    (root / "pyproject.toml").write_text("pins\n")
    (root / "cla_lib" / "module.py").write_text("x = 1\n")
    monkeypatch.setenv("CLA_CACHE", str(tmp_path / "cache"))
    organism = tmp_path / "cache" / "organisms" / "base-abc"
    organism.mkdir(parents=True)
    (organism / "model.safetensors").write_bytes(b"weights")
    keys = [book_cache.library_key(root)]
    (root / "cla_lib" / "module.py").write_text("x = 2\n")
    keys.append(book_cache.library_key(root))
    (root / "pyproject.toml").write_text("other pins\n")
    keys.append(book_cache.library_key(root))
    (organism / "model.safetensors").write_bytes(b"other weights")
    keys.append(book_cache.library_key(root))
    (root / "cla_lib" / "__pycache__").mkdir()
    (root / "cla_lib" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"compiled")
    keys.append(book_cache.library_key(root))
    assert len(set(keys)) == 4 and keys[-1] == keys[-2]
