"""cla_lib: a small library, built on nnsight, for the companion to arXiv 2510.26024.

Cross-lingual alignment (CLA) helps knowledge *transfer* across languages but can *erase* answers that should
depend on the query language. This package loads a model (the embedded model organism, a local Hugging Face
model, or a remote NDIF model), places it on the transfer–localization plane, and steers it.
"""

__version__ = "0.1.0"
