"""Tests for cla_lib.organism: names, sizes, the tokenizer, and the cached, deterministic tiny organism.

Only the tiny size trains here (seconds); the session's tiny organism comes from `tiny_organism_dir`.
"""

from __future__ import annotations

from dataclasses import replace

import time
from pathlib import Path

import pytest

from cla_lib.core.files import sha256
from cla_lib.organism import lexicon
from cla_lib.core.languages import DEFAULT_LANGUAGES
from cla_lib.core.files import save_atomically
from cla_lib.model.reference import UnknownOrganismError, parse_name
from cla_lib.organism import (BOS, SIZES, OrganismConfig, config_for, organism_path, prepare_organisms,
                              training_record, world_of)
from cla_lib.organism.world import ALL_LANGUAGES, World

# -- names and sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("organism", ("base", 0)),
    ("organism@3", ("base", 3)),
    ("organism:clo", ("clo", 0)),
    ("organism:clo@2", ("clo", 2)),
    ("organism:midalign@10", ("midalign", 10)),
])
def test_parse_name_gives_method_and_seed(name, expected):
    assert parse_name(name) == expected


@pytest.mark.parametrize("name", ["organisms", "Organism", "gpt2", "organism@x", "organism:clo@", "organism@-1", ""])
def test_parse_name_rejects_other_names(name):
    with pytest.raises(UnknownOrganismError):
        parse_name(name)


def test_config_for_gives_each_size_with_the_seed_in_model_and_world():
    assert config_for("default") == SIZES["default"]
    assert config_for("default", seed=1) == replace(SIZES["default"], seed=1, world=replace(SIZES["default"].world, seed=1))
    tiny = config_for("tiny", seed=2)
    assert (tiny.n_layers, tiny.hidden_size, tiny.vocab_size, tiny.steps) == (4, 64, 1024, 40)
    assert tiny.seed == 2 and tiny.world.seed == 2
    assert tiny.key() != config_for("tiny", seed=0).key() != config_for("default").key()


def test_config_for_reads_the_size_from_the_environment(monkeypatch):
    monkeypatch.setenv("CLA_ORGANISM_SIZE", "tiny")
    assert config_for() == config_for("tiny")
    monkeypatch.delenv("CLA_ORGANISM_SIZE")
    assert config_for() == config_for("default")


def test_unknown_size_is_an_error_naming_the_sizes():
    with pytest.raises(UnknownOrganismError, match="unknown organism size 'huge'; sizes: default, tiny"):
        config_for("huge")


# -- the tiny organism -------------------------------------------------------------------------------------------


def test_organism_directory_is_a_hugging_face_checkpoint_with_its_training_record(tiny_organism_dir):
    names = {path.name for path in tiny_organism_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json"} <= names
    record = training_record(tiny_organism_dir)
    assert record["method"] == "base" and record["config"]["n_layers"] == 4
    assert len(record["losses"]) == config_for("tiny").steps
    assert record["losses"][-1] < record["losses"][0]
    # Where it was trained and what it trained: the same configuration may give other bytes on another CPU.
    assert record["machine"]["torch_threads"] == 1 and record["machine"]["instruction_set"]
    assert record["weights_sha256"] == sha256(tiny_organism_dir / "model.safetensors")
    # No half-written (temporary, dot-named) directory is left beside it (the build locks, `.NAME.lock`, stay: empty
    # files); other tests may add finished organisms.
    assert not [path.name for path in tiny_organism_dir.parent.iterdir() if path.name.startswith(".") and path.is_dir()]


def test_world_of_an_organism_is_the_world_it_was_trained_on(tiny_organism_dir):
    world = world_of(tiny_organism_dir)
    expected = World(config_for("tiny").world)
    assert world.config == expected.config
    assert [item.to_json() for item in world.items("ko")] == [item.to_json() for item in expected.items("ko")]


def test_training_twice_from_cold_gives_bitwise_identical_weights(tiny_organism_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CLA_CACHE", str(tmp_path))
    again = organism_path("organism", size="tiny", progress=False)
    assert again != tiny_organism_dir and again.name == tiny_organism_dir.name
    for name in ("model.safetensors", "tokenizer.json"):
        assert (again / name).read_bytes() == (tiny_organism_dir / name).read_bytes(), name
    assert training_record(again)["losses"] == training_record(tiny_organism_dir)["losses"]


def test_prepare_trains_in_worker_processes_to_the_same_bytes(tiny_organism_dir, tmp_path, monkeypatch):
    # One organism per worker process, each on one thread: the bytes of training them one by one, in this process.
    monkeypatch.setenv("CLA_CACHE", str(tmp_path))
    lines = []
    paths = prepare_organisms(["base", "clo"], [0], size="tiny", workers=2, report=lines.append)
    assert set(paths) == {"organism@0", "organism:clo@0"} and len(lines) == 2
    assert (paths["organism@0"] / "model.safetensors").read_bytes() == (
        tiny_organism_dir / "model.safetensors").read_bytes()
    assert training_record(paths["organism:clo@0"])["torch_threads"] == 1
    again = prepare_organisms(["base", "clo"], [0], size="tiny", report=lines.append)
    assert again == paths and lines[-1].endswith("(cached)")
    with pytest.raises(UnknownOrganismError, match="unknown alignment method"):
        prepare_organisms(["bogus"], [0], size="tiny")


def test_a_cached_organism_is_reused_without_training(tiny_organism_environment, tiny_organism_dir):
    record = tiny_organism_dir / "training.json"
    modified = record.stat().st_mtime_ns
    started = time.perf_counter()
    assert organism_path("organism", progress=False) == tiny_organism_dir
    assert organism_path("organism", train_if_missing=False) == tiny_organism_dir
    assert time.perf_counter() - started < 2
    assert record.stat().st_mtime_ns == modified


def test_a_missing_organism_is_an_error_when_training_is_not_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("CLA_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not trained yet"):
        organism_path("organism", size="tiny", train_if_missing=False)
    assert not (tmp_path / "organisms").exists() or not any((tmp_path / "organisms").iterdir())


# -- writing a directory atomically ------------------------------------------------------------------------------


def test_save_atomically_moves_the_finished_directory_into_place(tmp_path):
    target = tmp_path / "organisms" / "base-x"
    assert save_atomically(target, lambda path: (path / "weights").write_text("w")) == target
    assert (target / "weights").read_text() == "w"
    assert [path.name for path in target.parent.iterdir()] == ["base-x"]


def test_save_atomically_leaves_nothing_behind_when_the_writer_raises(tmp_path):
    target = tmp_path / "organisms" / "base-x"

    def write_half(path: Path) -> None:
        (path / "config.json").write_text("{}")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        save_atomically(target, write_half)
    assert list(target.parent.iterdir()) == []


def test_save_atomically_keeps_a_directory_another_process_finished_first(tmp_path):
    target = tmp_path / "base-x"

    def write_while_another_finishes(path: Path) -> None:
        (path / "weights").write_text("mine")
        target.mkdir()
        (target / "weights").write_text("theirs")

    save_atomically(target, write_while_another_finishes)
    assert (target / "weights").read_text() == "theirs"
    assert [path.name for path in tmp_path.iterdir()] == ["base-x"]


# -- the tokenizer -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_organism_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_organism_dir)


@pytest.fixture(scope="module")
def world(tiny_organism_dir) -> World:
    return world_of(tiny_organism_dir)


def sentences_in_every_script(world: World) -> dict[str, list[str]]:
    """Per language (Latin: en, es, id; Han: zh; Hangul: ko; Greek: el; Persian: fa), world sentences."""
    creature, question = world.creatures_in("anchor")[0], world.culture[0]
    return {language: [world.fact_statement(creature, "lifespan", language),
                       world.fact_question(creature, "food", language),
                       world.culture_sentence(question, language, "explicit_statement", "KR",
                                              world.culture_answer(question, "KR", language))]
            for language in ALL_LANGUAGES}


def test_tokenizer_round_trips_sentences_in_every_script(tokenizer, world):
    for language, sentences in sentences_in_every_script(world).items():
        for sentence in sentences:
            ids = tokenizer(sentence)["input_ids"]
            assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
            # The pre-tokenizer's prefix space comes back on decoding (as with GPT-2's add_prefix_space).
            assert tokenizer.decode(ids, skip_special_tokens=True) == " " + sentence, (language, sentence)


def test_persian_zero_width_non_joiner_survives_the_round_trip(tokenizer):
    sentence = "nandi سیب می\u200cخورد."
    assert tokenizer.decode(tokenizer(sentence)["input_ids"], skip_special_tokens=True) == " " + sentence


def test_tokenizer_adds_one_bos_at_the_start(tokenizer):
    text = "In Korea, what is the capital?"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids[0]) == BOS == tokenizer.bos_token
    assert ids[1:] == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.bos_token_id not in ids[1:] and tokenizer.eos_token_id not in ids


def find(sequence: list[int], part: list[int]) -> int:
    return next((start for start in range(len(sequence) - len(part) + 1)
                 if sequence[start:start + len(part)] == part), -1)


def test_a_creature_name_is_the_same_tokens_in_english_chinese_and_korean(tokenizer, world):
    for creature in world.creatures[:8]:
        name = tokenizer(" " + creature.name, add_special_tokens=False)["input_ids"]
        for language in ("en", "zh", "ko"):
            for relation in lexicon.ENTITY_RELATIONS:
                for sentence in (world.fact_statement(creature, relation, language),
                                 world.fact_question(creature, relation, language)):
                    assert find(tokenizer(sentence)["input_ids"], name) >= 0, (creature.name, sentence)


def test_a_candidate_answer_is_the_same_tokens_after_any_prompt_of_its_language(tokenizer, world):
    # Scoring cuts the continuation at len(tokenizer(prompt)): that only works if prompt tokens are a prefix.
    for language in DEFAULT_LANGUAGES:
        for item in world.items(language)[::7]:
            context = tokenizer(item.prompt)["input_ids"]
            for choice in item.choices:
                whole = tokenizer(item.prompt + choice)["input_ids"]
                assert whole[:len(context)] == context, (item.id, choice)
                assert whole[len(context):] == tokenizer(choice, add_special_tokens=False)["input_ids"], item.id


def test_a_second_process_building_the_same_organism_waits_for_the_first_and_orphans_are_removed(tmp_path):
    import threading
    import time

    from cla_lib.core.files import building

    directory = tmp_path / "organisms" / "base-abc"
    orphan = tmp_path / "organisms" / ".base-abc.x1y2"  # what a killed save_atomically leaves
    orphan.mkdir(parents=True)
    (orphan / "model.safetensors").write_bytes(b"half")
    order = []

    def second():
        with building(directory):
            order.append("second")

    with building(directory):
        assert not orphan.exists()  # removed once the lock is held
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(0.3)
        order.append("first")
    waiting.join(5)
    assert order == ["first", "second"]


def test_ctrl_c_during_training_leaves_no_partial_organism(tmp_path, monkeypatch):
    import pytest

    import cla_lib.organism.base as base

    monkeypatch.setenv("CLA_CACHE", str(tmp_path))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(base, "train_base", interrupted)
    with pytest.raises(KeyboardInterrupt):
        base.base_organism(base.config_for("tiny"), progress=False)
    assert [path.name for path in (tmp_path / "organisms").iterdir() if not path.name.endswith(".lock")] == []


def test_a_config_knows_the_size_it_is_a_seed_of():
    from cla_lib.organism.base import size_of

    assert [size_of(config_for(size, seed)) for size in ("tiny", "default") for seed in (0, 2)] == [
        "tiny", "tiny", "default", "default"]
    assert size_of(replace(config_for("tiny"), steps=41)) is None  # a design run's variant is no size
