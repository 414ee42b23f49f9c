"""Tests of cla_lib.claims.comparison: deltas, spreads and the verdict on hand-made plane frames, the runs of a real-model
comparison, the erasure figure, and one evaluation of the tiny organism."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from cla_lib.claims import comparison, verdicts
from cla_lib.claims.comparison import Run, delta_table, deltas, erasure_runs, summarize, t_quantile
from cla_lib.claims.plots import erasure_figure


def plane_frame(values: dict) -> pd.DataFrame:
    """A plane frame from {(method, seed, language): (transfer, localization, english_bias)}."""
    return pd.DataFrame([{"method": method, "seed": seed, "language": language, "transfer": transfer,
                          "localization": localization, "english_bias": bias}
                         for (method, seed, language), (transfer, localization, bias) in values.items()])


def erasure_plane(moves: dict, seeds=(0, 1, 2), languages=("es", "ko")) -> pd.DataFrame:
    """Base at (0.3, 0.6, 0.1) in every seed and language; `moves[(method, language)]` is a list of per-seed
    (Δtransfer, Δlocalization) pairs added to it."""
    values = {}
    for seed_index, seed in enumerate(seeds):
        for language in languages:
            values[("base", seed, language)] = (0.3, 0.6, 0.1)
            for (method, move_language), steps in moves.items():
                if move_language == language:
                    transfer, localization = steps[seed_index]
                    values[(method, seed, language)] = (0.3 + transfer, 0.6 + localization, 0.1)
    return plane_frame(values)


ERASES = [(0.1, -0.1), (0.2, -0.05), (0.05, -0.2)]  # every seed: transfer up, localization down


def test_deltas_subtract_the_reference_of_the_same_seed_and_language():
    plane = plane_frame({("base", 0, "ko"): (0.2, 0.8, 0.1), ("base", 1, "ko"): (0.4, 0.6, 0.0),
                         ("clo", 0, "ko"): (0.5, 0.7, 0.3), ("clo", 1, "ko"): (0.4, 0.7, 0.1)})
    result = deltas(plane).set_index("seed")
    assert list(result.method) == ["clo", "clo"] and set(result.reference) == {"base"}
    assert result.loc[0, "transfer"] == pytest.approx(0.3) and result.loc[1, "transfer"] == pytest.approx(0.0)
    assert result.loc[0, "localization"] == pytest.approx(-0.1) and result.loc[1, "localization"] == pytest.approx(0.1)
    assert result.loc[0, "english_bias"] == pytest.approx(0.2)


def test_deltas_against_the_replay_control_and_without_a_reference():
    plane = plane_frame({("base", 0, "ko"): (0.2, 0.8, 0.1), ("replay", 0, "ko"): (0.3, 0.7, 0.1),
                         ("mit", 0, "ko"): (0.5, 0.5, 0.4)})
    result = deltas(plane, reference="replay").set_index("method")
    assert sorted(result.index) == ["base", "mit"]
    assert result.loc["mit", "transfer"] == pytest.approx(0.2) and result.loc["mit", "localization"] == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="no 'replay' rows"):
        deltas(plane[plane.method != "replay"], reference="replay")


def test_t_quantile():
    assert t_quantile(2) == pytest.approx(4.303) and t_quantile(1) == pytest.approx(12.706)
    assert t_quantile(100) == pytest.approx(1.984, abs=1e-3) and math.isnan(t_quantile(0))
    # Beyond the table the expansion continues it: t(31) = 2.0395, t(60) = 2.0003, t(1000) = 1.9623 (tables).
    assert t_quantile(31) == pytest.approx(2.0395, abs=2e-4) and t_quantile(31) < t_quantile(30)
    assert t_quantile(60) == pytest.approx(2.0003, abs=2e-4) and t_quantile(1000) == pytest.approx(1.9623, abs=2e-4)


def test_summarize_gives_mean_spread_interval_and_sign_counts():
    plane = erasure_plane({("midalign", "es"): [(0.1, -0.1), (0.2, 0.0), (0.3, -0.2)]}, languages=("es",))
    (row,) = summarize(deltas(plane)).to_dict("records")
    assert row["method"] == "midalign" and row["language"] == "es" and row["n_seeds"] == 3
    assert row["transfer"] == pytest.approx(0.2) and row["transfer_sd"] == pytest.approx(0.1)
    assert row["transfer_half_width"] == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert (row["transfer_positive"], row["transfer_negative"]) == (3, 0)
    assert (row["localization_positive"], row["localization_negative"]) == (0, 2)  # the zero is neither
    assert row["reference"] == "base"


def test_summarize_of_one_seed_has_no_interval():
    plane = erasure_plane({("clo", "ko"): [(0.1, -0.1)]}, seeds=(0,), languages=("ko",))
    (row,) = summarize(deltas(plane)).to_dict("records")
    assert row["n_seeds"] == 1 and math.isnan(row["transfer_sd"]) and math.isnan(row["transfer_half_width"])


def test_delta_table_formats_mean_and_half_width_per_method_and_language():
    plane = erasure_plane({("midalign", "es"): [(0.1, 0), (0.2, 0), (0.3, 0)],
                           ("midalign", "ko"): [(0.0, 0), (0.0, 0), (0.0, 0)]})
    table = delta_table(summarize(deltas(plane)), "transfer")
    assert list(table.columns) == ["es", "ko", "mean"] and list(table.index) == ["midalign"]
    assert table.loc["midalign", "es"] == f"+0.200 ± {4.303 * 0.1 / math.sqrt(3):.3f}"
    assert table.loc["midalign", "ko"] == "+0.000 ± 0.000" and table.loc["midalign", "mean"] == "+0.100"
    one_seed = delta_table(summarize(deltas(erasure_plane({("clo", "es"): [(0.1, 0)]}, seeds=(0,),
                                                           languages=("es",)))), "transfer")
    assert one_seed.loc["clo", "es"] == "+0.100"


def test_held_out_breakdown_averages_over_seeds_and_subtracts_the_base():
    rows = []
    for seed in (0, 1):
        for method, taught, held_out in (("base", [1, 1], [1, 0]), ("mit", [1, 0], [0, 0])):
            rows += [{"task": "localization", "method": method, "seed": seed, "held_out": False, "correct": bool(c)}
                     for c in taught]
            rows += [{"task": "localization", "method": method, "seed": seed, "held_out": True, "correct": bool(c)}
                     for c in held_out]
    rows.append({"task": "transfer", "method": "mit", "seed": 0, "held_out": False, "correct": False})
    table = comparison.held_out_breakdown(pd.DataFrame(rows))
    assert list(table.index) == ["base", "mit"]
    assert list(table.columns) == ["taught", "held out", "Δ taught", "Δ held out"]
    assert table.loc["base", "taught"] == 1.0 and table.loc["mit", "taught"] == 0.5
    assert table.loc["mit", "Δ taught"] == -0.5 and table.loc["mit", "Δ held out"] == -0.5


def test_parse_helpers():
    assert comparison.parse_seeds("0, 1,2") == [0, 1, 2] and comparison.parse_seeds(3) == [3]
    assert comparison.parse_list("midalign,, clo") == ["midalign", "clo"]
    assert comparison.parse_aligned_models("midalign=/a, clo@1=/b") == {("midalign", 0): "/a", ("clo", 1): "/b"}
    with pytest.raises(ValueError, match="method=path"):
        comparison.parse_aligned_models("midalign")


def test_real_model_runs_come_from_aligned_checkpoints_and_name_what_is_missing():
    runs = erasure_runs("some/model", ["midalign"], [0], include_replay=True,
                        aligned_models="midalign=/a,replay=/r")
    assert runs == [Run("base", 0, "some/model"), Run("midalign", 0, "/a"), Run("replay", 0, "/r")]
    two_seeds = erasure_runs("some/model", ["clo"], include_replay=False, aligned_models="clo=/a,clo@1=/b")
    assert two_seeds == [Run("base", 0, "some/model"), Run("clo", 0, "/a"), Run("base", 1, "some/model"),
                         Run("clo", 1, "/b")]
    # CLO's own control is the attention-only replay: both controls are named.
    missing = r"no aligned checkpoint for clo@0, replay@0, replay_attention@0: .*cla align"
    with pytest.raises(ValueError, match=missing):
        erasure_runs("some/model", ["midalign", "clo"], [0], aligned_models="midalign=/a")


def test_erasure_figure_has_a_panel_per_language_and_an_arrow_per_method():
    moves = {(method, language): ERASES for method in ("midalign", "clo", "replay")
             for language in ("es", "zh", "ko", "id", "el", "fa")}
    plane = erasure_plane(moves, languages=("es", "zh", "ko", "id", "el", "fa"))
    figure = erasure_figure(plane, title="tiny organism, seeds 0, 1, 2", chance={"transfer": 0.125})
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["Spanish (es)", "Chinese (zh)", "Korean (ko)", "Indonesian (id)",
                                               "Greek (el)", "Persian (fa)"]
    assert all(sum(text.arrow_patch is not None for text in ax.texts) == 3 for ax in axes)  # arrows: annotations
    assert all([text.get_text() for text in ax.texts if text.arrow_patch is None] == ["chance"] for ax in axes)
    assert figure._suptitle.get_text() == "tiny organism, seeds 0, 1, 2"
    assert "transfer" in axes[0].get_xlabel() and "localization" in axes[0].get_ylabel()
    matplotlib.pyplot.close(figure)


def test_evaluate_places_each_run_once_per_language_and_scores_a_shared_source_once(tiny_organism_dir,
                                                                                       monkeypatch):
    calls = []
    original = comparison.choice_logprobs
    monkeypatch.setattr(comparison, "choice_logprobs",
                        lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    runs = [Run("base", 0, str(tiny_organism_dir)), Run("replay", 0, str(tiny_organism_dir))]
    plane, answered = comparison.evaluate(runs, ["ko"], batch_size=256)
    assert len(calls) == 1
    assert list(plane.method) == ["base", "replay"] and list(plane.language) == ["ko", "ko"]
    assert set(answered.language) == {"en", "ko"} and set(answered.method) == {"base", "replay"}
    korean = answered[(answered.method == "base") & (answered.language == "ko")]
    base = plane.iloc[0]
    assert base.n_transfer == (korean.task == "transfer").sum()
    assert base.transfer == pytest.approx(korean[korean.task == "transfer"].correct.mean())
    assert base.english_bias == pytest.approx(korean[korean.task == "localization"].us_answer.mean())
    assert deltas(plane).transfer.tolist() == [0.0]


# -- the steering verdicts -------------------------------------------------------------------------------------


def test_in_last_third_is_a_relative_depth_above_two_thirds():
    assert [layer for layer in range(8) if verdicts.in_last_third(layer, 8)] == [5, 6, 7]
    assert [layer for layer in range(48) if verdicts.in_last_third(layer, 48)] == list(range(32, 48))
    assert not verdicts.in_last_third(20, 48) and not verdicts.in_last_third(0, 1)
