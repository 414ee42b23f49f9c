"""cla_lib: a small library, built on nnsight, for the companion to arXiv 2510.26024.

Cross-lingual alignment (CLA) helps knowledge *transfer* across languages but can *erase* answers that should
depend on the query language. This package loads a model (the embedded model organism, a local Hugging Face
model, or a remote NDIF model), places it on the transfer–localization plane, and steers it.
"""

import warnings

__version__ = "0.1.0"

# tqdm.auto, imported by transformers and nnsight, warns in a Jupyter kernel without ipywidgets; the chapters run
# with progress bars off (TQDM_DISABLE), and the warning only put a stderr box with a path in it on every page.
warnings.filterwarnings("ignore", message="IProgress not found")
