"""Each chapter's matmul FLOPs and wall time against this machine's matmul ceiling: how far the build is from its floor.

    python benchmarks/chapters.py [--chapters all] [--threads 2] [-p NAME=VALUE ...] [--json out.json] [--book DIR]

Every chapter's code cells run as one script in a fresh process (as the build's kernel runs them, from `book/`,
with the parameters cell's defaults, or `-p`'s values read as `cla rerun -p` reads them and set after that cell as
papermill sets them), twice: once timed, once under torch's FlopCounterMode (which slows the run, so it is not
timed). The floor of a chapter is its FLOPs at the ceiling (`performance.matmul_ceiling` on the same threads,
measured between the chapters); the achieved rate is its FLOPs over its wall time. A chapter far above its floor
spends its time outside matrix products (Python, tokenization, nnsight's tracing, small-op dispatch). The chapters
write their results under `book/results/` (or `$CLA_RESULTS`), as a build does. Needs the organisms cached.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from cla_lib.core import compute  # noqa: E402  (the library's chapter-facing modules load only where needed: a
# chapter's own run imports what the chapter imports, and no more)


def chapter_script(notebook: Path, parameters: dict) -> str:
    """A notebook's code cells as one script, `parameters` assigned after the cell tagged ``parameters``, as
    papermill assigns them (the chapters use no IPython magics)."""
    import nbformat

    sources = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "code":
            sources.append(cell.source)
            if "parameters" in cell.metadata.get("tags", []):
                sources.extend(f"{name} = {value!r}" for name, value in parameters.items())
    return "\n\n".join(sources)


def parameter(text: str) -> tuple[str, object]:
    """A `-p NAME=VALUE`, its value read as `cla rerun` reads it."""
    from cla_lib.book.rerun import parse_value

    name, separator, value = text.partition("=")
    if not separator or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: give a chapter parameter as NAME=VALUE")
    return name, parse_value(value)


def run_chapter(notebook: Path, count: bool, parameters: dict) -> dict:
    """Run one chapter in this process: its seconds, and its matmul FLOPs when `count`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    code = compile(chapter_script(notebook, parameters), str(notebook), "exec")
    namespace = {"__name__": "__main__", "display": lambda *objects, **options: None}  # tables are not rendered
    os.chdir(notebook.parent)
    plt.show = lambda *_, **__: plt.close("all")  # the figures are drawn, not shown
    started = time.perf_counter()
    if count:
        _, flops = compute.counted_flops(lambda: exec(code, namespace))
    else:
        exec(code, namespace)
        flops = None
    return {"seconds": time.perf_counter() - started, "flops": flops}


def in_process(notebook: Path, count: bool, threads: int, parameters: dict) -> dict:
    """`run_chapter` in a fresh Python, as a kernel would run it."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}
    command = [sys.executable, __file__, "--one", str(notebook), "--threads", str(threads),
               "--values", json.dumps(parameters), *(["--count"] if count else [])]
    finished = subprocess.run(command, capture_output=True, text=True, env=environment)
    if finished.returncode:
        sys.stderr.write(finished.stderr[-4000:])
        raise SystemExit(f"error: {notebook.stem} failed (its output above)")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", default="all", help="numbers or names, e.g. 03,04 (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (a build's kernels use all cores)")
    parser.add_argument("-p", "--parameter", type=parameter, action="append", default=[],
                        help="a chapter parameter, NAME=VALUE (repeatable), e.g. -p organism_size=tiny")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--book", type=Path, default=ROOT / "book", help="the chapters' folder (default: book/)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--values", type=json.loads, default={}, help=argparse.SUPPRESS)  # --one's parameters
    parser.add_argument("--count", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    parameters = dict(arguments.parameter)
    if arguments.one:
        import torch

        torch.set_num_threads(arguments.threads)
        print(json.dumps(run_chapter(Path(arguments.one), arguments.count, arguments.values)))
        return 0
    from cla_lib.book import rerun
    from cla_lib.book.costs import chapter_parameters
    from cla_lib.core import performance

    try:
        notebooks = rerun.select_chapters(arguments.chapters, arguments.book)
    except ValueError as error:
        parser.error(str(error))
    for notebook in notebooks:  # every parameter known to every chapter, before anything runs
        unknown = sorted(set(parameters) - set(chapter_parameters(notebook)))
        if unknown:
            parser.error(f"{notebook.stem} has no parameter {', '.join(unknown)}; its parameters: "
                         f"{', '.join(chapter_parameters(notebook))}")
    rows = []
    for notebook in notebooks:
        timed = in_process(notebook, False, arguments.threads, parameters)
        counted = in_process(notebook, True, arguments.threads, parameters)
        ceiling = performance.matmul_ceiling(threads=arguments.threads)
        flops = counted["flops"]
        rows.append({"chapter": notebook.stem, "seconds": timed["seconds"], "gflop": flops / 1e9,
                     "ceiling_gflops": ceiling, "floor_seconds": flops / 1e9 / ceiling,
                     "achieved_gflops": flops / 1e9 / timed["seconds"], "counted_seconds": counted["seconds"]})
        row = rows[-1]
        print(f"{row['chapter']:24} {row['seconds']:7.1f} s  {row['gflop']:9.1f} GFLOP  "
              f"floor {row['floor_seconds']:6.1f} s at {ceiling:.0f} GFLOP/s  "
              f"achieved {row['achieved_gflops']:5.1f} GFLOP/s", flush=True)
    total = sum(row["seconds"] for row in rows)
    floor = sum(row["floor_seconds"] for row in rows)
    print(f"{'total':24} {total:7.1f} s  floor {floor:.1f} s ({arguments.threads} thread(s))")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({"threads": arguments.threads, "chapters": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
