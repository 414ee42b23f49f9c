"""Cross-lingual alignment (CLA): the fine-tuning methods the paper re-evaluates, as small recipes.

A cross-lingual alignment method fine-tunes a multilingual model so that what it knows in English becomes usable
in other languages. The paper asks what such methods cost: they raise *transfer*, and they may also erase
*localization* (culture-specific answers that should differ by query language). To measure that cost on the model
organism, this module trains one aligned organism per method, starting from the cached base organism.

Each method is a recipe: an *objective* (a loss function of the model and a batch, below) and the data it reads.

- ``midalign``: a contrastive loss that pulls together the middle-layer representations of parallel sentences.
- ``clo``: cross-lingual preference optimization: prefer answering in the language of the question.
- ``mit``: multilingual instruction tuning: supervised question answering, translated into every language.
- ``replay``: no objective at all: the control.

**One design for all methods, so that the replay control isolates each objective.** Every method trains for the
same number of steps, with the same learning rate schedule and batch sizes, through the one training loop
(`cla_lib.core.training.train`), and every step's batch holds *replay* rows (the base organism's own training text,
continuing its packed stream at epochs the base never reached) plus a batch of the method's objective data:

    loss = language-model loss on the replay rows  +  objective_weight * the method's objective

Replay keeps the fine-tuned model from forgetting what it learnt (without it, a prototype's translate-train model
forgot its English-only facts), and it is extra training in its own right. The ``replay`` method runs exactly that
extra training with no objective, so "method minus replay" is the effect of the method's objective alone. CLO
trains only the attention projections, its replay included, so its control is ``replay_attention``: the same
replay training of the attention projections alone (`control_of`).

Everything is deterministic in the configuration: the batch of a step is a pure function of the step and the
seed.

Modules: `objectives` (the losses), `records` (the JSONL data and its batches), `recipes` (`METHODS`, `align`:
the one design all methods share), `real` (`align_model` for a Hugging Face directory), and for real models at
scale `lora` (peft adapters), `estimate` (memory and compute before a run) and `distributed` (several processes
under `accelerate launch`, with the one-process result). The aligned organisms are built in
`cla_lib.organism.aligned`.
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
