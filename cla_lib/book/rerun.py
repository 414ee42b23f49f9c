"""Per-language reruns: every chapter of the book, executed for one model and one language, and gathered again.

`rerun` executes the chapters with papermill, one language at a time, changing only what a chapter's `parameters`
cell names (`model`, `language`, `remote`, ...), and keeps per chapter, under `runs/<model-slug>/<language>/`, the
executed notebook, what the chapter glued (`<chapter>.results.json`, machine-readable) and its kernel's log. A
results file is written atomically once the chapter has finished, so a `runs/` folder only ever holds whole
results; `gather` reads a `runs/` folder back into one table. Languages are independent, so several can run at once
as separate processes. Before it starts, a rerun prints what it will cost (`estimate`). The NDIF key is never a
parameter (the kernels inherit `NDIF_API_KEY`, or nnsight's stored configuration), and a rerun checks every
notebook and results file it writes for the key's value and masks it. Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from cla_lib.book.chapters import check_parameters
from cla_lib.book.costs import chapter_parameters, describe_cost, estimate
from cla_lib.plane.evaluation import check_data
from cla_lib.core.files import write_atomic
from cla_lib.core.languages import resolve_languages
from cla_lib.model.reference import ModelRef, known_reference
from cla_lib.model.remote import Remote, read_api_key, check_compatible, check_served, known_key


ROOT = Path(__file__).resolve().parents[2]


BOOK = ROOT / "book"


CHAPTER_PATTERN = re.compile(r"^(\d\d)_[\w-]+$")


RESULTS_SUFFIX = ".results.json"


KEY_MASK = "[NDIF_API_KEY]"


# Parameter names that would put a secret into an executed notebook (papermill writes every parameter there).
KEY_NAME = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)


# Where chapter 01 glues the plane of its (single) language: the names `plane_frame` reads back.
PLANE_VALUES = {"transfer": "mean_transfer", "localization": "mean_localization",
                "english_bias": "mean_english_bias", "english_transfer": "english_ceiling"}


class RerunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a rerun; the chapters finished before it kept their results."""


def chapters(book: str | Path = BOOK) -> dict[str, Path]:
    """The book's numbered chapters, `{"01_organism_plane": path, ...}`, in order."""
    paths = sorted(Path(book).glob("*.ipynb"))
    return {path.stem: path for path in paths if CHAPTER_PATTERN.match(path.stem)}


def _number(name: str) -> int | None:
    """A chapter's number, so that "1" and "01" name the same chapter."""
    head = name.split("_")[0]
    return int(head) if head.isdigit() else None


def select_chapters(spec: str | Sequence[str] | None, book: str | Path = BOOK) -> list[Path]:
    """The chapters named by `spec`: `"1,2"` or `"01,02"` (numbers), full names, or None / "all" for every chapter."""
    available = chapters(book)
    if spec is None or spec == "all":
        return list(available.values())
    wanted = [part.strip() for part in (spec.split(",") if isinstance(spec, str) else spec) if part.strip()]
    selected = []
    for name in wanted:
        matches = [path for stem, path in available.items() if stem == name or _number(stem) == _number(name)]
        if not matches:
            raise ValueError(f"no chapter {name!r} in {book}; chapters: {', '.join(available) or 'none'}")
        selected += [path for path in matches if path not in selected]
    return selected


def parse_value(text: str) -> Any:
    """A `-p KEY=VALUE` value as papermill's command line reads it: None, booleans, numbers, else the text."""
    if text in ("None", "none", "null"):
        return None
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def model_slug(reference: str | ModelRef) -> str:
    """A folder name for a model: a preset or organism name as is, `owner--name` for a hub id, a directory's name."""
    path = Path(str(reference)).expanduser()
    if path.exists():
        text = path.resolve().name
    else:
        text = str(reference).replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._@:-]+", "-", text).replace(":", "-").strip("-.") or "model"


def run_directory(out: str | Path, reference: str | ModelRef, language: str) -> Path:
    # Absolute: the kernels run in the repository root, and the chapters' results (CLA_RESULTS) must land beside
    # the notebooks wherever the caller pointed `out`, not under the repository.
    return Path(out).resolve() / model_slug(reference) / language


_NUMPY_SCALAR = re.compile(r"^np\.(?:float|int|uint|bool_?)\w*\((.*)\)$", re.DOTALL)


def _glued_value(data: dict) -> Any:
    # Markdown first: its text/plain is only "<IPython.core.display.Markdown object>".
    if "text/markdown" in data:
        markdown = data["text/markdown"]
        return "".join(markdown) if isinstance(markdown, list) else markdown
    if "text/plain" in data:
        text = "".join(data["text/plain"]) if isinstance(data["text/plain"], list) else data["text/plain"]
        match = _NUMPY_SCALAR.match(text.strip())
        literal = match.group(1) if match else text.strip()
        try:
            return ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return text
    return None


def glued_values(notebook: dict) -> dict[str, Any]:
    """`{name: value}` of everything an executed notebook glued with `myst_nb.glue` (papermill record outputs).

    Values are the glued objects' text representations read back as Python literals where they are ones (numbers,
    strings, lists); NumPy scalars become plain numbers; Markdown comes back as its text; figures are skipped.
    """
    values = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if not scrapbook:
                continue
            prefix = scrapbook.get("mime_prefix", "")
            data = {key[len(prefix):]: value for key, value in output.get("data", {}).items() if key.startswith(prefix)}
            value = _glued_value(data)
            if value is not None:
                values[scrapbook["name"]] = value
    return values


def _mask_key(path: Path) -> bool:
    """Mask the NDIF key's value in a written file, should it ever appear there; whether it did."""
    key = known_key()
    if not key or not path.exists():
        return False
    text = path.read_text(encoding="utf-8", errors="replace")
    if key not in text:
        return False
    write_atomic(path, text.replace(key, KEY_MASK))
    return True


@contextlib.contextmanager
def _kernel_stderr_to(log_file: Path):
    """The chapter's kernel writes its own diagnostics to the inherited stderr ("Kernel is running over TCP",
    "KeyboardInterrupt caught in kernel" at shutdown): they go to `log_file`, not into the caller's terminal or, when
    a chapter reruns another (chapter 5), into its page."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log_file, "ab") as handle:
        os.dup2(handle.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _kernel_manager_logging_to(log_file: Path):
    """A kernel manager whose kernel writes its stderr to `log_file` while papermill's own output (its progress bar
    and the cells' output) stays on the caller's stderr: on Ctrl-C the kernel's KeyboardInterrupt traceback goes to
    the log, not into the terminal."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggingKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log_file, "ab") as handle:  # the child keeps its own copy of the descriptor
                return await super()._async_launch_kernel(kernel_cmd, **{**kw, "stderr": handle})

    return LoggingKernelManager


def run_chapter(path: Path, directory: Path, parameters: dict, *, kernel_name: str = "python3",
                cwd: Path | None = None, log: Callable[[str], None] = print, progress: bool = False) -> dict:
    """Execute one chapter with papermill into `directory`; return (and write) its results record. With
    `progress`, papermill shows its per-cell progress bar and logs each cell's output as it comes (stderr).

    Raises:
        RerunInterrupted: on Ctrl-C; the partial notebook is kept as `<chapter>.interrupted.ipynb`.
    """
    import papermill

    directory.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    running = directory / f".{stem}.running.ipynb"
    started = time.time()
    record = {"chapter": stem, "model": parameters.get("model"), "language": parameters.get("language"),
              "remote": parameters.get("remote", False), "parameters": parameters,
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}
    # The chapter's results files (cla_lib.book.publish) go beside its notebook, not into a folder every run shares.
    previous_results = os.environ.get("CLA_RESULTS")
    os.environ["CLA_RESULTS"] = str(directory / "results")
    kernel_log = directory / f"{stem}.kernel.log"
    kernel_log.unlink(missing_ok=True)
    try:
        with contextlib.nullcontext() if progress else _kernel_stderr_to(kernel_log):
            papermill.execute_notebook(str(path), str(running), parameters=parameters, kernel_name=kernel_name,
                                       cwd=str(cwd or path.parent.parent), progress_bar=progress, log_output=False,
                                       stdout_file=sys.stderr if progress else None,
                                       stderr_file=sys.stderr if progress else None,
                                       kernel_manager_class=_kernel_manager_logging_to(kernel_log))
        status, error = "ok", None
    except KeyboardInterrupt:
        if running.exists():
            os.replace(running, directory / f"{stem}.interrupted.ipynb")
            _mask_key(directory / f"{stem}.interrupted.ipynb")
        raise RerunInterrupted(stem) from None
    except Exception as exception:  # a failing cell: keep the executed notebook with its traceback
        status, error = "failed", f"{type(exception).__name__}: {str(exception).strip().splitlines()[-1:]}"
    finally:
        if previous_results is None:
            os.environ.pop("CLA_RESULTS", None)
        else:
            os.environ["CLA_RESULTS"] = previous_results
    target = directory / (f"{stem}.ipynb" if status == "ok" else f"{stem}.failed.ipynb")
    if running.exists():
        os.replace(running, target)
        if _mask_key(target):
            log(f"warning: the NDIF key appeared in {target} and was masked")
    stale = directory / (f"{stem}.failed.ipynb" if status == "ok" else f"{stem}.ipynb")
    stale.unlink(missing_ok=True)
    notebook = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
    record.update({"status": status, "error": error, "seconds": round(time.time() - started, 1),
                   "notebook": target.name, "values": glued_values(notebook)})
    _mask_key(kernel_log)
    results = directory / f"{stem}{RESULTS_SUFFIX}"
    write_atomic(results, json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n")
    _mask_key(results)
    return record


def chapter_run_parameters(path: Path, reference: str | ModelRef, language: str, *, remote: Remote = False,
                           extra: dict | None = None) -> dict:
    """The papermill parameters of one chapter: model, language, remote (when true), and `extra` values the
    chapter declares (others are left out, so one command line serves chapters with different parameters)."""
    declared = chapter_parameters(path)
    parameters = {"model": str(reference), "language": language}  # a chapter's parameter is the name
    if remote:
        if "remote" not in declared:
            raise ValueError(f"{path.name} has no `remote` parameter, so it cannot run on NDIF")
        parameters["remote"] = True
    for name, value in (extra or {}).items():
        if name in declared:
            parameters[name] = value
    return parameters


def rerun(reference: str | ModelRef, languages: str | Sequence[str], *, chapters_spec: str | Sequence[str] | None = None,
          remote: Remote = False, out: str | Path = "runs", extra: dict | None = None, book: str | Path = BOOK,
          kernel_name: str = "python3", batch_size: int = 64, show_cost: bool = True,
          log: Callable[[str], None] = print, progress: bool = False) -> list[dict]:
    """Execute the chapters for `model` in each language (in turn), writing notebooks and results under `out`.

    Args:
        reference: a preset, hub id, local directory or organism name (passed to every chapter as `model`).
        languages: one language code or several (comma-separated or a list), run one after the other.
        chapters_spec: `"01,02"`, chapter names, or None for every chapter of `book`.
        remote: run on NDIF (`-p remote True`); checks the key and that the model is served before starting.
        out: the runs folder; results go to `out/<model-slug>/<language>/`.
        extra: more papermill parameters (`transfer_data`, `seed`, `batch_size`, ...), each passed to the chapters
            that declare it. A real model needs `transfer_data` and `localization_data` (or `embedded_world`) where a
            chapter scores it: refused before the first chapter starts (`cla_lib.plane.evaluation.check_data`).

    Returns:
        The results records, one per chapter and language.

    Raises:
        RerunInterrupted: Ctrl-C; every chapter finished before it keeps its notebook and results.
    """
    languages = resolve_languages(languages)
    paths = select_chapters(chapters_spec, book)
    # Parsed once; a name no loader knows still labels its runs (its chapters say what is wrong with it).
    reference = known_reference(reference) or str(reference)
    extra = dict(extra or {})
    extra.setdefault("batch_size", batch_size)
    check_parameters(extra)  # every value a chapter would refuse, refused before the first kernel starts
    if any("embedded_world" in chapter_parameters(path) for path in paths):  # before anything runs, as chapters do
        check_data(reference, extra.get("transfer_data"), extra.get("localization_data"),
                   embedded_world=bool(extra.get("embedded_world")))
    if remote:
        _check_remote(reference)
    records = []
    for language in languages:
        if show_cost:
            log(describe_cost(estimate(reference, language, paths, transfer_data=extra.get("transfer_data"),
                                       localization_data=extra.get("localization_data"), batch_size=batch_size,
                                       organism_size=extra.get("organism_size"), parameters=extra)))
        directory = run_directory(out, reference, language)
        for path in paths:
            parameters = chapter_run_parameters(path, reference, language, remote=remote, extra=extra)
            log(f"[{language}] {path.stem}: running -> {directory / path.stem}.ipynb")
            record = run_chapter(path, directory, parameters, kernel_name=kernel_name, cwd=Path(book).parent,
                                 progress=progress, log=log)
            log(f"[{language}] {path.stem}: {record['status']} in {record['seconds']:.0f} s"
                + (f" ({record['error']})" if record["error"] else ""))
            records.append(record)
    return records


def _check_remote(reference: str | ModelRef) -> None:
    """Fail before any chapter starts: no key, NDIF unreachable, the model not served, or another nnsight there."""
    read_api_key()
    check_served(ModelRef.parse(reference).hub_id or str(reference))
    check_compatible()


def gather(runs_dir: str | Path):
    """Every results file under a runs folder as one DataFrame, one row per glued value.

    Columns: model, language, chapter, status, seconds, name, value (a chapter with nothing glued, e.g. a failed
    one, gives one row with name and value None).
    """
    rows = []
    for path in sorted(Path(runs_dir).glob(f"*/*/*{RESULTS_SUFFIX}")):
        record = json.loads(path.read_text(encoding="utf-8"))
        base = {"model": record.get("model"), "language": record.get("language"), "chapter": record.get("chapter"),
                "status": record.get("status"), "seconds": record.get("seconds"), "run": path.parent.parent.name}
        values = record.get("values") or {}
        rows += [{**base, "name": name, "value": value} for name, value in values.items()] or [
            {**base, "name": None, "value": None}]
    return pd.DataFrame(rows, columns=["model", "language", "chapter", "status", "seconds", "run", "name", "value"])


def plane_frame(gathered, chapter: str = "01_organism_plane"):
    """The plane per (model, language) from a `gather` frame: chapter 01's glued transfer, localization, English
    bias and ceiling (`PLANE_VALUES`), one row each, ready for `cla_lib.claims.plots.plane_figure`."""
    rows = gathered[(gathered["chapter"] == chapter) & (gathered["status"] == "ok")
                    & gathered["name"].isin(PLANE_VALUES.values())]
    if rows.empty:
        return pd.DataFrame(columns=["run", "model", "language", *PLANE_VALUES])
    wide = rows.pivot_table(index=["run", "model", "language"], columns="name", values="value", aggfunc="first")
    wide = wide.rename(columns={value: key for key, value in PLANE_VALUES.items()}).reset_index()
    wide.columns.name = None
    return wide[["run", "model", "language", *[key for key in PLANE_VALUES if key in wide]]]
