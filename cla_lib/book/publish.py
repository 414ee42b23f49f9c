"""A chapter's results as files a reader can download and replot: CSV for tables, JSON for verdicts and records.

Each chapter ends with one `publish` call. It writes `results/<chapter>/` (relative to the working directory, which
is `book/` while the book builds), atomically, one file per result plus `provenance.json`, and returns the MyST
download links for the page (glued with ``{glue:md}`downloads:myst```, so Sphinx copies every file into the site
and a link to a file that was not written fails the build).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cla_lib.core.files import write_atomic
from cla_lib.book.provenance import markdown, provenance


def _plain(value):
    """JSON-safe: numpy scalars become Python numbers, NaN becomes null, frames become lists of records."""
    if isinstance(value, pd.DataFrame):
        return [_plain(row) for row in flat(value).to_dict(orient="records")]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def flat(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its index as columns and each interval column (``(low, high)`` pairs) as ``<name>_low`` and
    ``<name>_high``, so that a CSV reader gets numbers, not the text of a Python list."""
    frame = frame if isinstance(frame.index, pd.RangeIndex) else frame.reset_index()
    for column in list(frame.columns):
        values = frame[column].dropna()
        if len(values) and all(isinstance(value, (list, tuple)) and len(value) == 2 for value in values):
            position = frame.columns.get_loc(column)
            pairs = frame.pop(column)
            frame.insert(position, f"{column}_high", [pair[1] if isinstance(pair, (list, tuple)) else None
                                                      for pair in pairs])
            frame.insert(position, f"{column}_low", [pair[0] if isinstance(pair, (list, tuple)) else None
                                                     for pair in pairs])
    return frame


def verdict_record(verdict) -> dict:
    """A verdict (`verdicts.Verdict` or `RuleVerdict`) as JSON: its status, its sentence and its rows."""
    rows = getattr(verdict, "checks", None)
    if rows is None:
        rows = getattr(verdict, "cells", pd.DataFrame())
    return {"status": verdict.status, "text": verdict.text, "rows": _plain(rows)}


@dataclass(frozen=True)
class Published:
    """What `publish` wrote: the files (name -> path) and the page's download links as MyST."""

    files: dict[str, Path]
    links: str
    record: dict

    @property
    def provenance(self) -> str:
        """The provenance record as Markdown, for the end of the page."""
        return markdown(self.record)


def results_directory() -> Path:
    """Where chapters write their results: ``$CLA_RESULTS``, else ``results`` in the working directory."""
    return Path(os.environ.get("CLA_RESULTS", "results"))


def publish(chapter: str, *, models=(), parameters: dict | None = None, directory: str | Path | None = None,
            **results) -> Published:
    """Write each result of `chapter` to `directory/chapter/`: a DataFrame as ``<name>.csv``, anything else
    (a dict, a list, a verdict record) as ``<name>.json``; and ``provenance.json`` (commit, versions, models,
    parameters). Returns the files and their download links."""
    folder = Path(directory or results_directory()) / chapter
    files = {}
    for name, value in results.items():
        if isinstance(value, pd.DataFrame):
            path = folder / f"{name}.csv"
            write_atomic(path, flat(value).to_csv(index=False))
        else:
            path = folder / f"{name}.json"
            write_atomic(path, json.dumps(_plain(value), indent=1, ensure_ascii=False) + "\n")
        files[name] = path
    files["provenance"] = folder / "provenance.json"
    record = provenance(models, parameters)
    write_atomic(files["provenance"], json.dumps(_plain(record), indent=1) + "\n")
    links = ", ".join(f"{{download}}`{path.name} <{path.as_posix()}>`" for path in files.values())
    return Published(files, links, record)
