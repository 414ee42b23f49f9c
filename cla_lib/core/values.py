"""Command-line values checked where they enter, once per kind of value, in the flag's own words.

argparse turns an `ArgumentTypeError` into "argument --steps: ..."; `Parser` prints that as one line (no usage
block) and exits 2, as every other refusal of the CLI does.
"""

from __future__ import annotations

import argparse
import math
import sys


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit 2 (its subcommands' too)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def positive_int(text: str) -> int:
    """A whole number ≥ 1 (steps, batch sizes, ranks, lengths)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive: give 1 or more")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, scales)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite positive number")
    return value


DTYPES = ("float32", "bfloat16", "float16", "auto")  # what a model's weights load as ("auto": the checkpoint's own)


def dtype_name(text: str) -> str:
    """A weights dtype by name, checked before torch is imported (`cla_lib.plane.loading` resolves it)."""
    if text not in DTYPES:
        raise argparse.ArgumentTypeError(f"unknown dtype {text!r}; dtypes: {', '.join(DTYPES)}")
    return text
