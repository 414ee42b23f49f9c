"""The organism's text as tokens: a byte-level BPE trained on the world, and packed training rows."""

from __future__ import annotations

import torch

from transformers import PreTrainedTokenizerFast

from cla_lib.core.batching import pack_documents
from cla_lib.organism.world import World


BOS, EOS, PAD = "<s>", "</s>", "<pad>"


def train_tokenizer(world: World, vocab_size: int):
    """A byte-level BPE over the world's text; it adds <s> at the start of every encoded text, as models do.

    A prefix space makes a word's tokens the same at the start of a text and inside it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(world.corpus_sample, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tokenizer.token_to_id(BOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD)


class PackedStream:
    """Rows of packed training text, epoch after epoch; `batch(step)` is a pure function of the step."""

    def __init__(self, world: World, tokenizer, sequence_length: int, batch_size: int, steps: int):
        self.batch_size = batch_size
        needed = batch_size * steps
        chunks, available, epoch = [], 0, 0
        while available < needed:
            chunk = pack_documents(tokenizer, world.documents(epoch), sequence_length)
            chunks.append(chunk)
            available += len(chunk)
            epoch += 1
        self.rows = torch.cat(chunks)
        self.epochs = epoch
        self.tokens_per_epoch = chunks[0].numel()

    def batch(self, step: int) -> dict:
        rows = self.rows[step * self.batch_size:(step + 1) * self.batch_size]
        return {"input_ids": rows, "labels": rows}
