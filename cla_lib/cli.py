"""`cla`: the companion's command line, a thin layer over the library (the chapters call the same functions).

    cla plane --model organism --language ko --json      where a model stands on the plane
    cla items --model organism --language ko --out items.jsonl  the exact scored items, for rescoring elsewhere
    cla organism path [--method clo] [--seed 1]          an organism's directory (training it if needed)
    cla organism prepare [--seeds 0,1,2]                 train every organism the book uses
    cla align --model DIR --method midalign --data parallel=pairs.jsonl --data replay=text.jsonl --out DIR
        --steps 500 --learning-rate 1e-5 --batch-size 16 [--lora-rank 8 --dtype bfloat16 --gradient-checkpointing]
        fine-tune a real model with an alignment method (several GPUs or nodes: accelerate launch -m cla_lib.cli align)
    cla vectors --model organism --out vectors.safetensors   EN and LOC steering vectors, every language and layer
    cla steer --model organism --language ko --vectors vectors.safetensors --add 'en.ko.3@3*4' --json  steered plane
    cla rerun --model gemma-3-12b-it --language ko [--chapters 01,02] [--remote] --out runs/  run the chapters
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from cla_lib import __version__
from cla_lib.core.languages import resolve_languages
from cla_lib.core.values import Parser, dtype_name, positive_float, positive_int


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="organism",
                        help="organism[:method][@seed], a preset, a Hugging Face directory, a GGUF file or a hub id")
    parser.add_argument("--language", default="all", help="a target language (es, zh, ko, id, el, fa), a "
                                                           "comma-separated list, or 'all' (default)")
    parser.add_argument("--transfer-data", help="Global-MMLU: a hub id or a local file/folder (real models only)")
    parser.add_argument("--localization-data", help="BLEnD: a hub id or a local folder (real models only)")
    parser.add_argument("--embedded-world", action="store_true",
                        help="score a real model on the organism's fictional world (a code-path check, no measurement)")
    parser.add_argument("--organism-size", choices=("default", "tiny"), default=None,
                        help="organism size (default: $CLA_ORGANISM_SIZE or 'default')")
    parser.add_argument("--split", choices=("extract", "validation", "test"), action="append",
                        help="only items of this split (repeatable; default: all items)")
    parser.add_argument("--remote", action="store_true", help="run on NDIF (key from $NDIF_API_KEY or `nnsight login`)")
    parser.add_argument("--device", default=None, help="where a real model loads: cuda (spread over the GPUs), cuda:1, "
                                                       "cpu (default: $CLA_DEVICE, else the CPU)")
    parser.add_argument("--dtype", type=dtype_name, default=None,
                        help="the weights' dtype: bfloat16, float32 (default: the preset's on a GPU, float32 on "
                             "the CPU)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="sequences per forward (default: 64)")


def _reference(arguments):
    """The model the command names, parsed once (`ModelRef.parse`); the CLI passes it down from here. A real model
    without its data is refused here, before anything loads."""
    from cla_lib.plane.evaluation import check_data
    from cla_lib.model import ModelRef

    reference = ModelRef.parse(arguments.model, size=arguments.organism_size)
    check_data(reference, arguments.transfer_data, arguments.localization_data,
               embedded_world=arguments.embedded_world)
    return reference


def _items(arguments, reference) -> list:
    from cla_lib.plane.evaluation import plane_items

    return plane_items(reference, resolve_languages(arguments.language),
                       transfer_data=arguments.transfer_data, localization_data=arguments.localization_data,
                       splits=arguments.split)


def _model(arguments, reference):
    from cla_lib.plane.loading import load_model, placement

    if arguments.remote:
        return load_model(reference, remote=True)
    lm = load_model(reference, device=arguments.device, dtype=arguments.dtype)
    print(f"{reference.name}: {placement(lm)}", file=sys.stderr)
    return lm


@contextlib.contextmanager
def _results_only_on_stdout():
    """While the work runs, whatever libraries print goes to stderr (nnsight's remote status display writes to
    stdout), so that stdout carries only the results printed after it: `--json` output stays parseable."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _print_points(points, as_json: bool, **fields) -> None:
    for point in points:
        if as_json:
            print(json.dumps({**point.to_json(), **fields}, ensure_ascii=False))
        else:
            print(f"{point.model}  {point.language}: transfer {point.transfer:.3f} (n={point.n_transfer}), "
                  f"localization {point.localization:.3f} (n={point.n_localization}), "
                  f"English bias {point.english_bias:.3f}, English ceiling {point.english_transfer:.3f}")


def command_plane(arguments) -> None:
    from cla_lib.plane.evaluation import explicit_cue, organism_fields, plane

    resolve_languages(arguments.language)  # bad input fails at once: the language, then the model, then the data
    reference = _reference(arguments)
    with _results_only_on_stdout():
        lm = _model(arguments, reference)
        items = explicit_cue(_items(arguments, reference)) if arguments.explicit_cue else _items(arguments, reference)
        points = plane(lm, items, model_name=arguments.model, batch_size=arguments.batch_size)
    _print_points(points, arguments.json, explicit_cue=arguments.explicit_cue, **organism_fields(reference))


def command_items(arguments) -> None:
    from cla_lib.core.items import write_items

    items = _items(arguments, _reference(arguments))
    write_items(items, arguments.out)
    print(f"wrote {len(items)} items to {arguments.out}", file=sys.stderr)


def command_organism(arguments) -> None:
    from cla_lib.model import ModelRef
    from cla_lib.organism import organism_path
    from cla_lib.steering import planted_organism  # noqa: F401 - organism:planted is built there

    if arguments.action == "path":
        print(organism_path(ModelRef.of_organism(arguments.method or "base", arguments.seed,
                                                 size=arguments.organism_size)))
        return
    # prepare: train (or find cached) every organism the book needs, so the chapters only load them.
    from cla_lib.alignment import METHODS
    from cla_lib.organism import PLANTED, prepare_organisms

    methods = ["base", *METHODS, PLANTED] if arguments.methods == "all" else arguments.methods.split(",")
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    prepare_organisms(methods, seeds, size=arguments.organism_size, report=lambda line: print(line, flush=True))


def command_align(arguments) -> None:
    from pathlib import Path

    from cla_lib.alignment import align_model

    data_files = {}
    for entry in arguments.data:
        kind, separator, path = entry.partition("=")
        if not separator:
            raise ValueError(f"--data takes KIND=PATH (for example parallel=pairs.jsonl), not {entry!r}")
        data_files[kind] = path
    targets = tuple(part.strip() for part in arguments.lora_targets.split(",")) if arguments.lora_targets else ()
    result = align_model(arguments.model, arguments.method, data_files, arguments.out, steps=arguments.steps,
                         learning_rate=arguments.learning_rate, batch_size=arguments.batch_size,
                         layer=arguments.layer, device=arguments.device, seed=arguments.seed,
                         sequence_length=arguments.sequence_length, dtype=arguments.dtype,
                         lora_rank=arguments.lora_rank, lora_alpha=arguments.lora_alpha, lora_targets=targets,
                         gradient_checkpointing=arguments.gradient_checkpointing,
                         estimate_only=arguments.estimate_only,
                         report=lambda line: print(line, file=sys.stderr, flush=True))
    if isinstance(result, Path):  # the first process's (the others' is None; an estimate went to stderr)
        print(result)


def _vector_kinds_help() -> str:
    from cla_lib.steering import VECTOR_KINDS

    lines = ["Vector keys are <kind>.<language>.<layer> (for example en.ko.3), float32, one [hidden] vector each. Kinds:"]
    lines += [f"  {kind.name:8} {kind.definition}" for kind in VECTOR_KINDS.values()]
    lines.append("Vectors are extracted on the extract split only: choose layers on validation, report on test.")
    return "\n".join(lines)


def command_vectors(arguments) -> None:
    from cla_lib.steering import extract_vectors, save_vectors

    if arguments.split not in (None, ["extract"]):
        raise ValueError("steering vectors are extracted on the extract split only (evaluation uses validation "
                         "and test); drop --split")
    unknown = sorted(set(arguments.kind or ()) - set(_all_kinds()))
    if unknown:
        raise ValueError(f"unknown vector kind(s) {', '.join(unknown)}; kinds: {', '.join(_all_kinds())}")
    arguments.split = ["extract"]
    resolve_languages(arguments.language)  # bad input fails at once: the language, then the model, then the data
    reference = _reference(arguments)
    lm = _model(arguments, reference)
    items = _items(arguments, reference)
    vectors = extract_vectors(lm, items, kinds=arguments.kind or _default_kinds(),
                              languages=resolve_languages(arguments.language), batch_size=arguments.batch_size,
                              remote=arguments.remote, model_name=arguments.model)
    save_vectors(vectors, arguments.out)
    layers = len(next(iter(vectors.values())).layers)
    print(f"wrote {len(vectors)} vectors x {layers} layers ({', '.join(vectors)}) to {arguments.out}",
          file=sys.stderr)


def _all_kinds() -> list[str]:
    from cla_lib.steering import VECTOR_KINDS

    return list(VECTOR_KINDS)


def _default_kinds() -> list[str]:
    from cla_lib.steering import DEFAULT_KINDS

    return list(DEFAULT_KINDS)


def _explain_kinds_in_help(subparser: argparse.ArgumentParser, epilog: str = "") -> None:
    """Append the vector kinds to `subparser`'s help when it is shown: they live in cla_lib.steering, whose import
    (torch, nnsight) would otherwise slow down every `cla` command."""
    format_help = subparser.format_help

    def format_help_with_kinds() -> str:
        subparser.epilog = epilog + _vector_kinds_help()
        return format_help()

    subparser.format_help = format_help_with_kinds


# --add KEY@LAYER*ALPHA: KEY a vector key (en.ko.3, or en.{language}.3 for each language's own vector), LAYER where
# to add it (default: the key's own layer), ALPHA its strength (default 1).
ADD_PATTERN = r"^(?P<key>[^@*\s]+?)(?:@(?P<layer>-?\d+))?(?:\*(?P<alpha>[^*@\s]+))?$"
ADD_SYNTAX = "KEY@LAYER*ALPHA, for example en.ko.3@3*4 (or en.{language}.3@3*4 for each language's own vector)"


def parse_add(text: str) -> tuple[str, int, float]:
    """'en.ko.3@5*4' -> ('en.ko.3', 5, 4.0); the layer defaults to the key's own, alpha to 1."""
    import re

    match = re.match(ADD_PATTERN, text)
    if not match:
        raise ValueError(f"--add {text!r} is not {ADD_SYNTAX}")
    key, layer, alpha = match.group("key"), match.group("layer"), match.group("alpha")
    if layer is None:
        own = key.rpartition(".")[2]
        if not own.isdigit():
            raise ValueError(f"--add {text!r}: name the layer to add at ({ADD_SYNTAX})")
        layer = own
    try:
        strength = float(alpha) if alpha is not None else 1.0
    except ValueError:
        raise ValueError(f"--add {text!r}: the strength {alpha!r} is not a number ({ADD_SYNTAX})") from None
    return key, int(layer), strength


def _resolve_terms(terms, vectors: dict, languages: list[str], source: str) -> dict:
    """{language: [(vector, layer, alpha)]}, the steering terms of `steering_edits`, for the parsed --add terms
    (keys `<kind>.<language>.<layer>` of `load_vectors`'s vectors, `{language}` in a key filled in): the key's
    layer's direction, added at the term's layer."""
    from cla_lib.steering import SteeringVector

    resolved = {language: [] for language in languages}
    for key, layer, alpha in terms:
        for language in languages:
            key_of_language = key.replace("{language}", language)
            name, _, own_layer = key_of_language.rpartition(".")
            vector = vectors.get(name)
            if vector is None or not own_layer.isdigit() or int(own_layer) not in vector:
                raise ValueError(f"no vector {key_of_language!r} in {source}; it holds {', '.join(sorted(vectors))}, "
                                 "keyed <kind>.<language>.<layer>")
            resolved[language].append((SteeringVector({layer: vector[int(own_layer)]}, vector.source), layer, alpha))
    return resolved


def _check_terms_fit(resolved: dict, lm, source: str) -> None:
    from cla_lib.model import n_layers

    layer_count = n_layers(lm)
    hidden_size = lm._module.config.get_text_config().hidden_size
    for terms in resolved.values():
        for vector, layer, _ in terms:
            if not 0 <= layer < layer_count:
                raise ValueError(f"--add ...@{layer}: the model has decoder layers 0..{layer_count - 1}")
            if vector.hidden_size != hidden_size:
                raise ValueError(f"the vectors in {source} have size {(vector.hidden_size,)}, but the model's hidden "
                                 f"size is {hidden_size}: they come from another model")


def command_steer(arguments) -> None:
    from pathlib import Path

    from cla_lib.steering import load_vectors, steered_plane, steering_edits

    terms = [parse_add(text) for text in arguments.add]
    splits = arguments.split or ["test"]
    if "extract" in splits:
        raise ValueError("steering is evaluated on validation or test items: the vectors come from the extract split")
    arguments.split = splits
    if not Path(arguments.vectors).is_file():
        raise FileNotFoundError(f"no vectors file {arguments.vectors!r}; write one with `cla vectors`")
    resolved = _resolve_terms(terms, load_vectors(arguments.vectors), resolve_languages(arguments.language),
                              arguments.vectors)
    reference = _reference(arguments)
    with _results_only_on_stdout():
        lm = _model(arguments, reference)
        _check_terms_fit(resolved, lm, arguments.vectors)
        items = _items(arguments, reference)
        edits = {language: steering_edits(*language_terms) for language, language_terms in resolved.items()}
        points = steered_plane(lm, items, edits, model_name=arguments.model, batch_size=arguments.batch_size,
                               remote=arguments.remote)
    _print_points(points, arguments.json)


def command_rerun(arguments) -> None:
    """Exits 0 when every chapter ran, 1 when one failed, 130 on Ctrl-C (finished chapters keep their results)."""
    from cla_lib.book import rerun

    book = arguments.book or rerun.BOOK
    from cla_lib.plane.loading import use_placement

    use_placement(arguments.device, arguments.dtype)  # the chapters' kernels inherit both: load_model reads them
    extra = {}
    for entry in arguments.parameter or []:
        name, separator, value = entry.partition("=")
        if not separator or not name.isidentifier():
            raise ValueError(f"-p takes NAME=VALUE (for example seed=1), not {entry!r}")
        if rerun.KEY_NAME.search(name):
            raise ValueError(f"-p {name}: keys are never parameters (they would be written into the notebook); "
                             "NDIF's comes from $NDIF_API_KEY")
        extra[name] = rerun.parse_value(value)
    known = set().union(*map(rerun.chapter_parameters, rerun.select_chapters(arguments.chapters, book)))
    if set(extra) - known:  # papermill would only warn, and the run would ignore it
        raise ValueError(f"-p {', '.join(sorted(set(extra) - known))}: no chapter run here has that parameter; "
                         f"theirs: {', '.join(sorted(known))}")
    for name in ("transfer_data", "localization_data", "organism_size"):
        if getattr(arguments, name, None) is not None:
            extra[name] = getattr(arguments, name)
    if arguments.embedded_world:
        extra["embedded_world"] = True
    if arguments.estimate_only:
        _reference(arguments)  # a real model without its data is refused, as its run would be
        for language in resolve_languages(arguments.language):
            frame = rerun.estimate(arguments.model, language, rerun.select_chapters(arguments.chapters, book),
                                   transfer_data=arguments.transfer_data, localization_data=arguments.localization_data,
                                   batch_size=arguments.batch_size, organism_size=arguments.organism_size)
            if not arguments.json:
                print(rerun.describe_cost(frame))
                continue
            for row in frame.to_dict("records"):  # one JSON object per chapter, with the estimate's assumptions
                print(json.dumps({"model": arguments.model, "language": language, **row, **frame.attrs},
                                 ensure_ascii=False, default=str))
        return
    try:
        records = rerun.rerun(arguments.model, resolve_languages(arguments.language), chapters_spec=arguments.chapters,
                              remote=arguments.remote, out=arguments.out, extra=extra, book=book,
                              batch_size=arguments.batch_size, log=lambda line: print(line, flush=True),
                              progress=not arguments.quiet)
    except rerun.RerunInterrupted as interrupted:
        print(f"cla: interrupted during {interrupted}; finished chapters keep their results in {arguments.out}",
              file=sys.stderr)
        raise SystemExit(130) from None
    failed = [record["chapter"] for record in records if record["status"] != "ok"]
    if failed:
        print(f"cla: failed: {', '.join(failed)} (tracebacks in the .failed.ipynb notebooks)", file=sys.stderr)
        raise SystemExit(1)


def parser() -> argparse.ArgumentParser:
    main_parser = Parser(prog="cla", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    main_parser.add_argument("--version", action="version", version=f"cla {__version__}")
    commands = main_parser.add_subparsers(dest="command", required=True)

    plane_parser = commands.add_parser("plane", help="transfer, localization and English bias per language")
    _add_model_arguments(plane_parser)
    plane_parser.add_argument("--json", action="store_true", help="one JSON object per language")
    plane_parser.add_argument("--explicit-cue", action="store_true",
                              help="ask the culture questions with the country named (BLEnD: its own questions)")
    plane_parser.set_defaults(run=command_plane)

    items_parser = commands.add_parser("items", help="write the exact scored items as JSONL")
    _add_model_arguments(items_parser)
    items_parser.add_argument("--out", required=True)
    items_parser.set_defaults(run=command_items)

    organism_parser = commands.add_parser("organism", help="the embedded model organism")
    organism_parser.add_argument("action", choices=("path", "prepare"),
                                 help="path: print one organism's directory; prepare: train every organism the "
                                      "book needs (--methods, --seeds) that is not cached yet")
    organism_parser.add_argument("--method", default=None, help="base (default); an alignment method: midalign, clo, "
                                 "mit, replay, replay_attention; or planted (chapter 3's positive control)")
    organism_parser.add_argument("--seed", type=int, default=0, help="path: the organism's seed (default: 0)")
    organism_parser.add_argument("--seeds", default="0,1,2", help="prepare: comma-separated seeds")
    organism_parser.add_argument("--methods", default="all", help="prepare: comma-separated methods, or all")
    organism_parser.add_argument("--organism-size", choices=("default", "tiny"), default=None)
    organism_parser.set_defaults(run=command_organism)

    align_parser = commands.add_parser("align", help="fine-tune a real model with an alignment method")
    align_parser.add_argument("--model", required=True, help="a Hugging Face directory, GGUF file, preset or hub id")
    align_parser.add_argument("--method", required=True, help="midalign, clo, mit, replay or replay_attention")
    align_parser.add_argument("--data", action="append", required=True, metavar="KIND=PATH",
                              help="a JSONL data file: replay=... (always) and parallel=..., preference=... or "
                                   "instruction=... (repeatable)")
    align_parser.add_argument("--out", required=True, help="the new model directory (must not exist)")
    align_parser.add_argument("--steps", type=positive_int, required=True, help="optimizer steps")
    align_parser.add_argument("--learning-rate", type=positive_float, required=True, help="peak learning rate")
    align_parser.add_argument("--batch-size", type=positive_int, required=True, help="records per step")
    align_parser.add_argument("--layer", type=int, default=None, help="MidAlign's layer (default: the middle one)")
    align_parser.add_argument("--sequence-length", type=positive_int, default=512, help="replay row length in tokens")
    align_parser.add_argument("--device", default=None, help="default: cuda if available, else cpu (under "
                                                             "accelerate launch: each process's own)")
    align_parser.add_argument("--dtype", type=dtype_name, default="float32",
                              help="the weights' dtype: float32 (default), bfloat16")
    align_parser.add_argument("--lora-rank", type=positive_int, default=None,
                              help="train LoRA adapters of this rank (saved in peft's format) instead of the weights")
    align_parser.add_argument("--lora-alpha", type=positive_float, default=None,
                              help="LoRA's scale (default: 2 x rank)")
    align_parser.add_argument("--lora-targets", default=None,
                              help="modules to adapt, comma-separated (default: the method's, else every projection)")
    align_parser.add_argument("--gradient-checkpointing", action="store_true",
                              help="recompute activations in backward (less memory, one more forward)")
    align_parser.add_argument("--estimate-only", action="store_true",
                              help="print the memory and compute estimate and stop")
    align_parser.add_argument("--seed", type=int, default=0, help="the seed of initialization and batch order")
    align_parser.set_defaults(run=command_align)

    vectors_parser = commands.add_parser(
        "vectors", help="EN and LOC steering vectors for every language and layer, as safetensors",
        description="Extract steering vectors (difference of mean last-token residuals) on the extract split.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _explain_kinds_in_help(vectors_parser)
    _add_model_arguments(vectors_parser)
    vectors_parser.add_argument("--kind", action="append",
                                help="only this kind of vector (repeatable; default: every kind listed below but the "
                                     "negative controls)")
    vectors_parser.add_argument("--out", required=True, help="the safetensors file to write")
    vectors_parser.set_defaults(run=command_vectors)

    steer_parser = commands.add_parser(
        "steer", help="the plane under steering vectors added to the residual stream",
        description="Score the plane's items with vectors added after decoder layers (the English ceiling is "
                    "scored unsteered). Default split: test.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _explain_kinds_in_help(steer_parser, f"--add takes {ADD_SYNTAX}; quote it in the shell. Several --add apply "
                                         "at once.\n")
    _add_model_arguments(steer_parser)
    steer_parser.add_argument("--vectors", required=True, help="a file written by `cla vectors`")
    steer_parser.add_argument("--add", action="append", required=True, metavar="KEY@LAYER*ALPHA",
                              help="add ALPHA times vector KEY after decoder layer LAYER (repeatable)")
    steer_parser.add_argument("--json", action="store_true", help="one JSON object per language")
    steer_parser.set_defaults(run=command_steer)

    rerun_parser = commands.add_parser(
        "rerun", help="execute the book's chapters for one model and language (papermill), keeping their results",
        description="Execute the chapters with papermill for a model and a language, writing "
                    "OUT/<model>/<language>/<chapter>.ipynb and <chapter>.results.json (what each chapter glued). "
                    "Prints the estimated cost first. Several languages can run at once as separate processes: "
                    "cla rerun ... --language ko & cla rerun ... --language es &")
    rerun_parser.add_argument("--model", required=True, help="a preset, hub id, local directory or organism name")
    rerun_parser.add_argument("--language", required=True, help="a language, or a comma-separated list run in turn")
    rerun_parser.add_argument("--chapters", default=None, help="comma-separated chapter numbers or names "
                                                               "(default: every chapter)")
    rerun_parser.add_argument("--remote", action="store_true", help="run on NDIF (key from $NDIF_API_KEY or `nnsight login`)")
    rerun_parser.add_argument("--out", default="runs", help="the runs folder (default: runs)")
    rerun_parser.add_argument("--transfer-data", default=None, help="Global-MMLU: a hub id or a local file/folder")
    rerun_parser.add_argument("--localization-data", default=None, help="BLEnD: a hub id or a local folder")
    rerun_parser.add_argument("--embedded-world", action="store_true",
                              help="score a real model on the organism's fictional world (a code-path check)")
    rerun_parser.add_argument("--organism-size", choices=("default", "tiny"), default=None)
    rerun_parser.add_argument("--batch-size", type=positive_int, default=64, help="sequences per forward (default: 64)")
    rerun_parser.add_argument("--device", default=None, help="where the chapters load the model: cuda (spread over "
                                                             "the GPUs, the preset's dtype), cuda:1, cpu (default: "
                                                             "$CLA_DEVICE, else the CPU)")
    rerun_parser.add_argument("--dtype", type=dtype_name, default=None,
                              help="the weights' dtype where the chapters load the model: bfloat16, float32 "
                                   "(default: $CLA_DTYPE, else the preset's on a GPU, float32 on the CPU)")
    rerun_parser.add_argument("-p", "--parameter", action="append", metavar="NAME=VALUE",
                              help="another chapter parameter, passed to the chapters that declare it (repeatable)")
    rerun_parser.add_argument("--book", default=None, help="the folder of the chapters (default: this book's)")
    rerun_parser.add_argument("--estimate-only", action="store_true", help="print the estimated cost and stop")
    rerun_parser.add_argument("--json", action="store_true", help="with --estimate-only: one JSON object per chapter")
    rerun_parser.add_argument("--quiet", action="store_true",
                              help="no per-cell progress bar and cell output (stderr); one line per chapter remains")
    rerun_parser.set_defaults(run=command_rerun)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        arguments.run(arguments)
    except KeyboardInterrupt:
        # Whatever was being written is not left half-written (caches and results are replaced atomically).
        print("cla: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
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
    from cla_lib.model import MissingAPIKeyError, RemoteNotAvailableError

    return (ValueError, FileNotFoundError, NotImplementedError, PermissionError, DatasetUnavailableError,
            MissingAPIKeyError, RemoteNotAvailableError)


if __name__ == "__main__":
    sys.exit(main())
