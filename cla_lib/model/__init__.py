"""Models: how one is named (`reference`), described (`presets`), read and edited (`layers`), and run on NDIF (`remote`).

Loading sits one floor up, in `cla_lib.plane.loading`, because loading the organism may train it (`cla_lib.organism`).
"""

from cla_lib.model.reference import HUB_ID_PATTERN, ModelNotFoundError, ModelRef, UnknownOrganismError, known_reference, parse_name
from cla_lib.model import presets
from cla_lib.model.presets import ANSWER_CUE, ModelPreset, PRESETS, resolve_preset, format_prompt
from cla_lib.model.layers import (
    LAYER_PATHS, UnsupportedArchitectureError, decoder_layers, n_layers, residual, add_to_residual
)
from cla_lib.model.remote import (
    NDIF_API_KEY_VARIABLE, TOKENIZER_LOAD_KEYWORDS, MissingAPIKeyError, RemoteNotAvailableError,
    NDIF_STATUS_TIMEOUT_SECONDS, REMOTE_TASK, RemoteModel, ndif_host, check_compatible, check_served, remote_skeleton
)
