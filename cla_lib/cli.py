"""`cla`: the companion's command line, a thin layer over the library (the chapters call the same functions).

    cla plane --model organism --language ko --json      where a model stands on the plane
    cla items --model organism --language ko --out items.jsonl
                                                           the exact scored items, for rescoring elsewhere
    cla organism path [--method clo] [--seed 1]          an organism's directory (training it if needed)
    cla align --model DIR --method midalign --data parallel=pairs.jsonl --data replay=text.jsonl --out DIR
              --steps 500 --learning-rate 1e-5 --batch-size 16  fine-tune a real model with an alignment method
"""

from __future__ import annotations

import argparse
import json
import sys

from cla_lib.languages import resolve_languages


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="organism",
                        help="organism[:method][@seed], a model preset, a local Hugging Face directory or a hub id")
    parser.add_argument("--language", default="all", help="a target language (es, zh, ko, id, el, fa), a "
                                                           "comma-separated list, or 'all' (default)")
    parser.add_argument("--transfer-data", help="Global-MMLU: a hub id or a local file/folder (real models only)")
    parser.add_argument("--localization-data", help="BLEnD: a hub id or a local folder (real models only)")
    parser.add_argument("--organism-size", choices=("default", "tiny"), default=None,
                        help="organism size (default: $CLA_ORGANISM_SIZE or 'default')")
    parser.add_argument("--split", choices=("extract", "validation", "test"), action="append",
                        help="only items of this split (repeatable; default: all items)")
    parser.add_argument("--remote", action="store_true", help="run on NDIF (key from $NDIF_API_KEY)")
    parser.add_argument("--batch-size", type=int, default=64)


def _items(arguments) -> list:
    from cla_lib.evaluation import plane_items

    return plane_items(arguments.model, resolve_languages(arguments.language),
                       transfer_data=arguments.transfer_data, localization_data=arguments.localization_data,
                       size=arguments.organism_size, splits=arguments.split)


def _model(arguments):
    from cla_lib.models import load_model

    name = arguments.model
    if name.startswith("organism"):
        from cla_lib.organism import organism_path

        name = str(organism_path(name, size=arguments.organism_size))
    return load_model(name, remote=arguments.remote)


def _print_points(points, as_json: bool) -> None:
    for point in points:
        if as_json:
            print(json.dumps(point.to_json(), ensure_ascii=False))
        else:
            print(f"{point.model}  {point.language}: transfer {point.transfer:.3f} (n={point.n_transfer}), "
                  f"localization {point.localization:.3f} (n={point.n_localization}), "
                  f"English bias {point.english_bias:.3f}, English ceiling {point.english_transfer:.3f}")


def command_plane(arguments) -> None:
    from cla_lib.evaluation import plane

    resolve_languages(arguments.language)  # bad input fails at once: the language, then the model, then the data
    model = _model(arguments)
    items = _items(arguments)
    _print_points(plane(model, items, model_name=arguments.model, batch_size=arguments.batch_size),
                  arguments.json)


def command_items(arguments) -> None:
    from cla_lib.items import write_items

    items = _items(arguments)
    write_items(items, arguments.out)
    print(f"wrote {len(items)} items to {arguments.out}", file=sys.stderr)


def command_organism(arguments) -> None:
    from cla_lib.organism import organism_path

    name = "organism" if arguments.method in (None, "base") else f"organism:{arguments.method}"
    print(organism_path(f"{name}@{arguments.seed}", size=arguments.organism_size))


def command_align(arguments) -> None:
    from cla_lib.alignment import align_model

    data_files = {}
    for entry in arguments.data:
        kind, separator, path = entry.partition("=")
        if not separator:
            raise ValueError(f"--data takes KIND=PATH (for example parallel=pairs.jsonl), not {entry!r}")
        data_files[kind] = path
    print(align_model(arguments.model, arguments.method, data_files, arguments.out, steps=arguments.steps,
                      learning_rate=arguments.learning_rate, batch_size=arguments.batch_size, layer=arguments.layer,
                      device=arguments.device, seed=arguments.seed, sequence_length=arguments.sequence_length))


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="cla", description=__doc__,
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = main_parser.add_subparsers(dest="command", required=True)

    plane_parser = commands.add_parser("plane", help="transfer, localization and English bias per language")
    _add_model_arguments(plane_parser)
    plane_parser.add_argument("--json", action="store_true", help="one JSON object per language")
    plane_parser.set_defaults(run=command_plane)

    items_parser = commands.add_parser("items", help="write the exact scored items as JSONL")
    _add_model_arguments(items_parser)
    items_parser.add_argument("--out", required=True)
    items_parser.set_defaults(run=command_items)

    organism_parser = commands.add_parser("organism", help="the embedded model organism")
    organism_parser.add_argument("action", choices=("path",))
    organism_parser.add_argument("--method", default=None,
                                 help="base (default) or an alignment method: midalign, clo, mit, replay")
    organism_parser.add_argument("--seed", type=int, default=0)
    organism_parser.add_argument("--organism-size", choices=("default", "tiny"), default=None)
    organism_parser.set_defaults(run=command_organism)

    align_parser = commands.add_parser("align", help="fine-tune a local Hugging Face model with an alignment method")
    align_parser.add_argument("--model", required=True, help="a local Hugging Face model directory")
    align_parser.add_argument("--method", required=True, help="midalign, clo, mit or replay")
    align_parser.add_argument("--data", action="append", required=True, metavar="KIND=PATH",
                              help="a JSONL data file: replay=... (always) and parallel=..., preference=... or "
                                   "instruction=... (repeatable)")
    align_parser.add_argument("--out", required=True, help="the new model directory (must not exist)")
    align_parser.add_argument("--steps", type=int, required=True)
    align_parser.add_argument("--learning-rate", type=float, required=True)
    align_parser.add_argument("--batch-size", type=int, required=True)
    align_parser.add_argument("--layer", type=int, default=None, help="MidAlign's layer (default: the middle one)")
    align_parser.add_argument("--sequence-length", type=int, default=512, help="replay row length in tokens")
    align_parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    align_parser.add_argument("--seed", type=int, default=0)
    align_parser.set_defaults(run=command_align)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        arguments.run(arguments)
    except Exception as error:
        # Bad input (an unknown language, model, method or file, a missing key or data set) is the user's to fix:
        # say what, not where.
        if not isinstance(error, _user_errors()):
            raise
        print(f"cla: error: {error}", file=sys.stderr)
        return 2
    return 0


def _user_errors() -> tuple[type[Exception], ...]:
    # Imported only when a command failed: these modules import torch, which `cla --help` should not wait for.
    from cla_lib.data import DatasetUnavailableError
    from cla_lib.models import MissingAPIKeyError

    return (ValueError, FileNotFoundError, NotImplementedError, PermissionError, DatasetUnavailableError,
            MissingAPIKeyError)


if __name__ == "__main__":
    sys.exit(main())
