"""Steering vectors: directions in the residual stream, read off contrasting prompts and added back at inference.

A steering vector for layer L is the difference between the mean residual stream after decoder layer L on two sets of
prompts that differ in one respect, read at the last prompt token; adding `alpha` times it after layer L moves the
model along that respect. Kinds (`VECTOR_KINDS`): **en** (English minus the target language), **loc** (the country
cue minus none) and **loclang** (the target language minus English), each with negative controls.

    vectors = extract_vectors(model, items)              # {"en.ko": SteeringVector, "loc.ko": ...}
    edits = steering_edits((vectors["en.ko"], 3, 4.0), (vectors["loc.ko"], 6, 2.0))   # Surgical Steering
    points = steered_plane(model, test_items, edits)

Vectors are extracted on `extract`, chosen on `validation`, reported on `test`. Design notes: docs/design-notes.md.
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
from cla_lib.steering.planted import planted_organism  # registers organism:planted's builder
