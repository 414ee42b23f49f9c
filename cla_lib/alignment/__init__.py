"""Cross-lingual alignment (CLA): the fine-tuning methods the paper re-evaluates, as small recipes.

An alignment method fine-tunes a multilingual model so that what it knows in English becomes usable in other
languages; the paper asks what that costs in *localization*. Each method is a recipe, an *objective* and the data
it reads: ``midalign`` (contrastive, middle layers), ``clo`` (cross-lingual preference optimization), ``mit``
(multilingual instruction tuning) and ``replay`` (no objective: the control). All methods share one design (the
same steps, schedule and replay rows, through one loop), so "method minus replay" is the objective's effect alone.

Modules: `objectives` (the losses), `records` (the JSONL data and its batches), `recipes` (`METHODS`, `align`),
`real` (`align_model` for a Hugging Face directory), and for real models at scale `lora`, `estimate` and
`distributed`. The aligned organisms are built in `cla_lib.organism.aligned`. Design notes: docs/design-notes.md.
"""

from cla_lib.alignment.objectives import (
    contrastive_loss, mean_pooled, residual_after, midalign_loss, continuation_logprobs, answer_loss, dpo_loss,
    clo_loss
)
from cla_lib.alignment.records import (
    DATA_FIELDS, encode_texts, encode_continuations, parallel_batch, preference_batch, instruction_batch,
    RecordBatches, read_records
)
from cla_lib.alignment.recipes import (
    FORMAT_VERSION, ATTENTION_PROJECTIONS, AlignmentConfig, MidAlignConfig, CLOConfig, AttentionReplayConfig,
    CONTROL_OF, CONTROLS, control_of, Recipe, Method,
    midalign_recipe, clo_recipe, mit_recipe, replay_recipe, METHODS, method_of, trainable_parameters, align,
    save_trained
)
from cla_lib.alignment.real import align_model
