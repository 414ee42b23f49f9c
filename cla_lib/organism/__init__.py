"""The model organism: a small multilingual causal LM that this project trains itself, on CPU, on a synthetic world.

The world (`cla_lib.organism.world`) has a known ground truth. The organism is a `LlamaForCausalLM` (8 decoder layers
by default, so that it has an early, a middle and a late stage) with a byte-level BPE tokenizer trained on the
world's text. Training is deterministic in the `OrganismConfig` and the result is a standard Hugging Face directory
(`config.json`, `model.safetensors`, tokenizer files) cached under a key of the world and training configuration; the
directory appears atomically, so an interrupted training never leaves a half-written model behind.

Names: ``organism`` (the base model), ``organism:<method>`` (an aligned organism, see `cla_lib.alignment`), each
optionally with ``@<seed>`` (``organism:midalign@1``); ``organism:planted`` is chapter 3's positive control, the base
with a layer dissociation planted (`cla_lib.organism.planted`). Sizes: ``default`` for the book, ``tiny`` for tests
and quick runs (the environment variable ``CLA_ORGANISM_SIZE`` picks the default size).
"""

from cla_lib.organism import lexicon
from cla_lib.organism.world import ALL_LANGUAGES, WorldConfig, Creature, CultureQuestion, World
from cla_lib.organism.corpus import BOS, EOS, PAD, train_tokenizer, PackedStream
from cla_lib.organism.base import (
    FORMAT_VERSION, OrganismConfig, SIZES, config_for, cache_root, build_model, base_organism, training_record,
    world_of, is_organism_directory
)
from cla_lib.organism.alignment_data import ORGANISM_DATA, ORGANISM_RECORDS, in_base_text, record_overlap
from cla_lib.organism.aligned import (
    DOSES, RECORDS_FILE, dose_directories, organism_records, organism_method_config, aligned_organism_key,
    organism_replay, aligned_organism
)
from cla_lib.organism.planted import PLANTED, PlantedConfig, planted_config, planted_directory
from cla_lib.organism.registry import organism_path, prepare_organisms, register_builder
