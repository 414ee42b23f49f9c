"""What every benchmark here shares: its common options, the model it measures, and the machine it ran on."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from cla_lib.loading import load_model  # noqa: E402


def add_common_options(parser: argparse.ArgumentParser, *, repeats: int) -> None:
    parser.add_argument("--model", help="a model directory (default: the default organism if cached, else tiny)")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: steadier timings)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="also write the results here")


def default_model() -> tuple[str, str]:
    """(directory, label): the default organism if cached, else the tiny one (trained if needed)."""
    from cla_lib.organism import organism_path

    try:
        return str(organism_path("organism", size="default", train_if_missing=False)), "organism (default size)"
    except FileNotFoundError:
        return str(organism_path("organism", size="tiny", progress=False)), "organism (tiny size; default not cached)"


def setup(arguments: argparse.Namespace):
    """Set the thread count and load the model: (model, directory, label)."""
    torch.set_num_threads(arguments.threads)
    directory, label = (arguments.model, arguments.model) if arguments.model else default_model()
    return load_model(directory), directory, label


def machine() -> dict:
    return {"device": "cpu", "machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__}
