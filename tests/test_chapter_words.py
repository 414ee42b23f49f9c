"""The chapters' words (cla_lib.claims: plane_study, erasure, dissociation, balance; verdicts.size_note): each
conditional sentence says what its numbers found, on small hand-made tables, and the glued numbers keep their types
(the first page reads them across chapters)."""

from __future__ import annotations

import pandas as pd

from cla_lib.book.benchmarks import workload_numbers
from cla_lib.claims import balance, dissociation, erasure, plane_study
from cla_lib.claims.intervals import CANNOT_TELL, DOES_NOT, REPRODUCES
from cla_lib.claims.verdicts import size_note
from cla_lib.organism.knowledge import LOC_HEADROOM


def test_the_size_note_says_a_tiny_run_says_nothing_and_counts_the_seeds():
    assert "tiny organism" in size_note(True, 3)
    assert size_note(False) == "Every number in this chapter comes from this run."
    assert size_note(False, 1).endswith("span 1 seed.") and size_note(False, 3).endswith("span 3 seeds.")


def test_the_plane_numbers_are_floats_but_the_language_count():
    plane = pd.DataFrame({"transfer": [0.5, 0.7], "localization": [0.4, 0.2], "english_bias": [0.1, 0.3]})
    numbers = plane_study.plane_numbers(plane, 0.9, {"transfer": 0.125, "localization": 0.14}, ["es", "ko"])
    assert numbers["transfer_gap"] == 0.9 - 0.6 and numbers["n_languages"] == 2
    assert all(isinstance(value, float) for name, value in numbers.items() if name != "n_languages")


def test_what_loc_could_recover_is_compared_with_the_headroom_the_testbed_asks():
    def breakdown(after: float) -> pd.DataFrame:
        return pd.DataFrame({"held out (explicit only)": [0.2], "held out, country named": [after]})

    assert plane_study.recoverable_text(breakdown(0.2 + LOC_HEADROOM + 0.05)).endswith("(chapter 3).")
    assert "little to show" in plane_study.recoverable_text(breakdown(0.25))


def test_the_methods_data_are_new_unless_a_record_overlaps():
    clean = pd.DataFrame({column: [0, 0] for column in erasure.OVERLAP})
    assert "new to the base" in erasure.data_text(clean)
    assert erasure.data_text(clean.assign(in_base_text=[0, 2])).startswith("**2 records overlap")
    assert "user's" in erasure.data_text(pd.DataFrame())


def test_erasure_controls_name_the_replay_verdict_and_the_positive_control():
    assert erasure.controls_status(None, None) == "no replay controls in this run (include_replay=False)"
    text = erasure.controls_status(None, {"control": "alignment raises transfer: found"})
    assert text.endswith("; alignment raises transfer: found")


def test_the_beside_comparisons_add_the_explicit_cue_only_when_the_items_have_it():
    without = balance.beside_comparisons(["base", "mit"], balance.LABELS, explicit=False)
    assert [row[2] for row in without] == ["base", "mit"]
    assert balance.beside_comparisons(["base"], balance.LABELS, explicit=True)[-1][0] == balance.EXPLICIT_CUE


def test_the_balance_words_follow_the_verdicts():
    beside = pd.DataFrame({"comparison": ["US answers: a", "US answers: b", balance.EXPLICIT_CUE],
                           "verdict": [REPRODUCES, CANNOT_TELL, DOES_NOT], "interval": ["x", "y", "+0.1"]})
    text = balance.beside_text(beside, explicit=True)
    assert text.startswith("Of the 2 models compared, Surgical Steering gives fewer US answers than 1 of them, "
                           "and as many as the rest")
    assert "than 0" not in text
    none = balance.beside_text(beside.assign(verdict=CANNOT_TELL), explicit=False)
    assert "as often as each" in none and "than 0" not in none
    both = balance.beside_text(beside.assign(verdict=[REPRODUCES, DOES_NOT, CANNOT_TELL]), explicit=False)
    assert both == ("Of the 2 models compared, Surgical Steering gives fewer US answers than 1 of them and more US "
                    "answers than 1 of them.")
    assert text.endswith("LOC steering localizes better than the cue.")
    null, noisy = (pd.Series({"verdict": word, "Δ(transfer + localization)": "+0.0"})
                   for word in (CANNOT_TELL, REPRODUCES))
    assert balance.controls_status(null) == "negative control null"
    assert "finds balance in noise" in balance.control_text(noisy)
    assert "no erasure to undo" in balance.undo_text(None, balance.LABELS)


def test_the_answer_language_text_tells_transfer_from_answering_in_english():
    def rates(after: dict) -> pd.DataFrame:
        return pd.DataFrame([{"transfer": 0.3, "concept": 0.4, "english_answer": 0.1}, after], index=[0.0, 2.0])

    raised = dissociation.answer_text(rates({"transfer": 0.5, "concept": 0.6, "english_answer": 0.1}), 3, 2.0)
    assert "does raise transfer" in raised
    english = dissociation.answer_text(rates({"transfer": 0.2, "concept": 0.6, "english_answer": 0.5}), 3, 2.0)
    assert english.endswith("answer in English.")


def test_the_language_based_loc_vector_is_read_against_minus_en():
    cosines = pd.DataFrame({"model": ["base", "base"], "pair": ["en·loclang", "en·loclang"], "cosine": [-0.9, -0.95]})
    assert dissociation.en_loclang_text(cosines).endswith("implies.")
    assert dissociation.en_loclang_text(cosines.assign(cosine=[-0.2, 0.1])).endswith("pull EN elsewhere.")


def test_the_dissociation_controls_status_counts_the_parts():
    controls = pd.DataFrame({"verdict": [CANNOT_TELL] * 6})
    positive = pd.DataFrame({"verdict": [REPRODUCES] * 3})
    assert dissociation.controls_status(controls, True, controls.iloc[0:0], positive) == (
        "negative controls null (6 of 6 parts); planted dissociation found (3 of 3 parts)")
    assert dissociation.controls_status(controls, True, controls.iloc[0:0], None).endswith(
        "; no positive control (organism only)")
    assert dissociation.aligned_text(["base"], {}, {}, 0) == "No aligned organism was swept in this run."


def test_the_floor_numbers_keep_their_glue_names_and_types():
    table = pd.DataFrame({"flops_ratio": [3.0, 5.0], "wall_ratio": [2.0, 4.0], "new_over_floor": [1.1, 1.2],
                          "prompts_only_over_new": [1.0, 2.0], "items": [32, 4], "passes": [1, 9]},
                         index=pd.Index(["plane", "sweep"], name="name"))
    numbers = workload_numbers(table)
    assert numbers["sweep_flops_ratio"] == 5.0 and numbers["floor_sweep_passes"] == 9
    assert isinstance(numbers["floor_plane_items"], int) and isinstance(numbers["plane_wall_ratio"], float)


def test_the_claims_evidence_counts_questions_per_seed_and_seeds():
    parts = pd.DataFrame({"part": ["(1) LOC deeper", "(2) EN raises transfer", "(3) LOC raises localization"],
                          "interval": ["a", "b", "c"], "questions": [None, 53, 122], "seeds": [3, 3, 3],
                          "detectable": [4.0, 0.013, 0.008]})
    text = dissociation.claim_evidence(parts)
    assert "n = 53 creature questions and 122 culture questions per seed, 3 seeds; detectable ±0.013" in text
    intervals = pd.DataFrame({"against": ["base", "mit"], "Δ(transfer + localization)": ["+0.001", "+0.4"],
                              "verdict": [CANNOT_TELL, REPRODUCES], "creature_questions": [53, 53],
                              "culture_questions": [122, 122], "detectable": [0.01, 0.05]})
    evidence = balance.claim_evidence(intervals, 3)
    assert evidence.startswith("Δ(transfer + localization) against the base +0.001; better than 1 of 2 models")
    assert "n = 53 creature questions and 122 culture questions per seed, 3 seeds" in evidence
