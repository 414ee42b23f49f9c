"""Steering vectors: directions in the residual stream, read off contrasting prompts and added back at inference.

A steering vector for layer L is the difference between the mean residual stream after decoder layer L on two
sets of prompts that differ in one respect, read at the **last prompt token** (the position that predicts the
answer). Adding `alpha` times it to the residual after layer L at every position moves the model along that
respect. This companion defines three kinds (`VECTOR_KINDS`), each from parallel prompts of one target language:

- **en**: the question in English minus the same question in the target language (transfer and culture items):
  "make the model read this as English", the paper's English steering.
- **loc**: the culture question with the explicit cue for the language's own country ("In Korea, ...") minus the
  same question without it: Veselovsky et al. (2025)'s explicit-minus-implicit vector, the default LOC vector.
- **loclang**: the culture question in the target language minus its English version, i.e. -EN restricted to
  culture items: "the language itself as the cultural cue", an alternative LOC definition.

    vectors = extract_vectors(model, items)              # {"en.ko": SteeringVector, "loc.ko": ...}
    edits = steering_edits((vectors["en.ko"], 3, 4.0), (vectors["loc.ko"], 6, 2.0))   # Surgical Steering
    points = steered_plane(model, test_items, edits)

Each kind has its negative controls (`controls.py`): random directions with a vector's norms, and LOC from its own
pairs with the cue on a random side of each (`loc_shuffled`); `layer_study` sweeps, chooses and tests them exactly
like the vectors they stand beside.

A `SteeringVector` is a value, `layer -> [hidden]` plus where it came from, with the arithmetic of the paper's
notation (`v_loc - v_en`, `2.0 * v`). Vectors are extracted on the items of the `extract` split only; layers and
strengths are chosen on `validation` (`best_layer`, `select_surgical`) and reported on `test` (`check_disjoint`
guards against overlap). Applying a vector never changes the model: the edits live inside one nnsight trace.

Every function that runs the model takes `remote`: `False` runs locally, `True` on NDIF, `"local"` through
nnsight's serialization round trip in-process (what a remote run would execute). Several forwards (a sweep, the
batches of an extraction) then run as one `model.session()`, so a remote sweep is one request. Everything a
session or trace body touches is built before it (token tensors, edit lists) and everything it returns is saved
inside it.
"""

from cla_lib.steering.vector import SteeringVector, save_vectors, load_vectors
from cla_lib.steering.activations import PROGRESS_MIN_STEPS, last_positions, last_token_activations
from cla_lib.steering.extraction import (
    DEFAULT_KINDS, VectorKind, VECTOR_KINDS, extract_vectors
)
from cla_lib.steering.controls import random_like
from cla_lib.steering.splits import QUESTION_KEYS, question_key, check_disjoint
from cla_lib.steering.apply import Edits, steering_edits, apply_edits, generate_ids, generate
from cla_lib.steering.sweeps import (
    steered_plane, sweep, surgical_sweep, steered_planes, forward_count, with_english_choices,
    answer_language_sweep
)
from cla_lib.steering.selection import (
    SELECTION_RULE, SURGICAL_CANDIDATE_LAYERS, SURGICAL_RULE, TARGET_METRIC, LayerChoice, SurgicalChoice,
    best_alpha_per_layer, best_layer, ranked_layers, select_surgical, sweep_means, break_tie, resampled_layers,
    layer_shares, layer_difference,
)
from cla_lib.steering.study import (
    ALIGNED_STEERING, CONTROL_KINDS, STUDY_KINDS, SURGICAL_CONFIGURATIONS, SURGICAL_CONTROL, LayerStudy,
    SurgicalStudy, aligned_test_answers, layer_study, surgical_study, surgical_choices, surgical_choice_row,
    surgical_requests, with_controls
)
