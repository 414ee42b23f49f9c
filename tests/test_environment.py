"""The environment the book is built in is the one pyproject.toml pins.

pyproject.toml is the single source of truth for dependencies; environment.yml repeats its pins for conda users.
These tests fail when the two lists drift apart, when a pin is loosened, or when the running interpreter has a
different version of a pinned package (a stale .venv, or a package upgraded by hand).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def exact_pins(requirements: list[str]) -> dict[str, str]:
    """Map each requirement's canonical name to its exact version; fail on anything that is not `name==version`."""
    pins: dict[str, str] = {}
    for line in requirements:
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not pinned exactly: {line!r}"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"pinned twice: {name}"
        pins[name] = specifiers[0].version
    return pins


def pyproject_pins() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    return exact_pins(project["dependencies"])


def environment_yml_pins() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf8"))
    pip_sections = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    requirements = [line for line in pip_sections[0] if not line.startswith("-e")]
    assert "-e ." in pip_sections[0], "environment.yml must install the project itself (-e .)"
    return exact_pins(requirements)


def test_environment_yml_pins_the_same_packages_as_pyproject():
    assert environment_yml_pins() == pyproject_pins()


def test_environment_yml_asks_for_python_3_11():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf8"))
    conda_packages = [entry for entry in environment["dependencies"] if isinstance(entry, str)]
    assert "python=3.11" in conda_packages
    assert "pip" in conda_packages


def test_torch_is_pinned_to_the_cpu_wheel_on_disk():
    # Any other torch pulls a multi-GB CUDA build on the project's machines.
    assert pyproject_pins()["torch"] == "2.13.0"


def test_jupyter_book_is_pinned_to_1_x():
    # _config.yml and _toc.yml are Jupyter Book 1.x formats; 2.x builds books differently.
    assert pyproject_pins()["jupyter-book"] == "1.0.4.post1"


def test_pyproject_requires_python_3_11():
    with open(ROOT / "pyproject.toml", "rb") as file:
        assert tomllib.load(file)["project"]["requires-python"] == ">=3.11"


HYPHENATED_MODULES = {"sphinx-mathjax-offline": "sphinx-mathjax-offline"}


@pytest.mark.parametrize("name, pinned", sorted(pyproject_pins().items()))
def test_installed_version_matches_pin(name: str, pinned: str):
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{name}=={pinned} is pinned but not installed; run `bash scripts/test.sh` to set up .venv")
    # Compare public versions: the CPU wheel of torch is 2.13.0+cpu, which `torch==2.13.0` accepts.
    assert Version(installed).public == Version(pinned).public, f"{name}: installed {installed}, pinned {pinned}"
    # Every pinned distribution here ships a top-level module of the same name (jupyter-book -> jupyter_book), but
    # sphinx-mathjax-offline, whose folder keeps its hyphens (it is found by that name: cla_lib.book.sphinx_ext).
    module = HYPHENATED_MODULES.get(name) or name.replace("-", "_")
    importlib.import_module(module)


def test_console_script_cla_points_at_the_cli():
    with open(ROOT / "pyproject.toml", "rb") as file:
        assert tomllib.load(file)["project"]["scripts"] == {"cla": "cla_lib.cli:main"}
