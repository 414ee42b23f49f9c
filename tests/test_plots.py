"""Tests for cla_lib.claims.plots: the plane figure says which languages it shows, where they stand, and how sure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cla_lib.claims.plots import language_label, plane_figure  # noqa: E402

FRAME = pd.DataFrame({
    "language": ["ko", "fa"], "transfer": [0.25, 0.5], "localization": [0.75, 0.125],
    "transfer_interval": [[0.1, 0.4], [0.3, 0.7]], "localization_interval": [[0.6, 0.9], [0.05, 0.3]],
})


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_language_label_names_the_language_and_keeps_unknown_codes():
    assert language_label("ko") == "Korean (ko)" and language_label("xx") == "xx"


def test_plane_figure_places_each_language_at_its_transfer_and_localization():
    ax = plane_figure(FRAME, title="organism@0 on the plane")
    points = np.concatenate([collection.get_offsets() for collection in ax.collections
                             if isinstance(collection, PathCollection)])
    assert {tuple(point) for point in points} == {(0.25, 0.75), (0.5, 0.125)}
    assert ax.get_title() == "organism@0 on the plane"
    assert "transfer" in ax.get_xlabel() and "localization" in ax.get_ylabel()
    assert ax.get_xlim() == (-0.02, 1.02) and ax.get_ylim() == (-0.02, 1.02)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["Korean (ko)", "Persian (fa)"]


def test_plane_figure_draws_the_interval_bars_from_the_frame():
    ax = plane_figure(FRAME, title="t")
    segments = [segment for collection in ax.collections if hasattr(collection, "get_segments")
                for segment in collection.get_segments()]
    spans = {(round(float(s[0][0]), 6), round(float(s[1][0]), 6), round(float(s[0][1]), 6), round(float(s[1][1]), 6))
             for s in segments}
    assert (0.1, 0.4, 0.75, 0.75) in spans  # Korean's transfer interval, drawn at its localization
    assert (0.5, 0.5, 0.05, 0.3) in spans  # Persian's localization interval, drawn at its transfer


def test_plane_figure_marks_chance_levels():
    ax = plane_figure(FRAME.drop(columns=["transfer_interval", "localization_interval"]), title="t",
                      chance={"transfer": 0.125, "localization": 0.2})
    lines = [(list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines() if len(line.get_xdata())]
    vertical = [x[0] for x, _ in lines if x[0] == x[1]]
    horizontal = [y[0] for _, y in lines if y[0] == y[1]]
    assert 0.125 in vertical and 0.2 in horizontal


# -- steering figures ------------------------------------------------------------------------------------------


def test_layer_curves_figure_has_a_panel_per_model_and_metric_and_stars_the_best_layers():
    from cla_lib.claims.plots import layer_curves_figure

    rows = [{"model": model, "vector": vector, "layer": layer, "language": language, "metric": metric,
             "value": 0.1 * layer + (0.05 if language == "ko" else 0.0)}
            for model in ("base", "MidAlign") for vector in ("EN", "LOC") for layer in range(4)
            for language in ("ko", "es") for metric in ("transfer", "localization")]
    unsteered = pd.DataFrame([{"model": model, "metric": metric, "value": 0.2}
                              for model in ("base", "MidAlign") for metric in ("transfer", "localization")])
    best = pd.DataFrame([{"model": "base", "vector": "EN", "metric": "transfer", "layer": 2}])
    figure = layer_curves_figure(pd.DataFrame(rows), title="t", unsteered=unsteered, best=best)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["base: transfer", "base: localization", "MidAlign: transfer", "MidAlign: localization"]
    stars = [collection.get_offsets() for collection in figure.axes[0].collections
             if isinstance(collection, PathCollection) and len(collection.get_offsets()) == 1]
    assert any(np.allclose(offsets[0], (2, 0.225)) for offsets in stars)  # the mean over languages at layer 2
    assert any(list(line.get_ydata()) == [0.2, 0.2] for line in figure.axes[1].get_lines())


def test_conditions_figure_has_a_panel_per_language_and_the_mean_and_a_legend_entry_per_condition():
    from cla_lib.claims.plots import conditions_figure

    conditions = (("base", "base", 0.2), ("Surgical Steering", "steering", 0.4), ("CLO", "CLA method", 0.3))
    frame = pd.DataFrame([{"condition": condition, "family": family, "language": language, "transfer": transfer,
                           "localization": 0.5}
                          for language in ("ko", "fa") for condition, family, transfer in conditions])
    figure = conditions_figure(frame, title="t", chance={"transfer": 0.125})
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["Korean (ko)", "Persian (fa)", "mean over languages"]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["base", "Surgical Steering", "CLO"]
    points = {tuple(point) for collection in visible[2].collections if isinstance(collection, PathCollection)
              for point in collection.get_offsets()}
    assert points == {(0.2, 0.5), (0.4, 0.5), (0.3, 0.5)}


def test_conditions_at_the_same_point_in_every_language_are_drawn_once_under_both_names():
    from cla_lib.claims.plots import conditions_figure

    # Surgical Steering chose LOC alone: the same model, so the same point in every language. EN alone meets it in
    # one language only, and stays a condition of its own.
    points = {"base": (0.2, 0.3), "LOC alone": (0.25, 0.6), "Surgical Steering": (0.25, 0.6), "EN alone": (0.25, 0.6)}
    families = {"base": "base", "LOC alone": "steering", "Surgical Steering": "steering", "EN alone": "steering"}
    frame = pd.DataFrame([{"condition": condition, "family": families[condition], "language": language,
                           "transfer": transfer + (0.1 if condition == "EN alone" and language == "fa" else 0),
                           "localization": localization}
                          for language in ("ko", "fa") for condition, (transfer, localization) in points.items()])
    figure = conditions_figure(frame, title="t")
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["base", "LOC alone = Surgical Steering",
                                                                           "EN alone"]
    korean = figure.axes[0]
    drawn = [tuple(point) for collection in korean.collections if isinstance(collection, PathCollection)
             for point in collection.get_offsets()]
    assert sorted(drawn) == [(0.2, 0.3), (0.25, 0.6), (0.25, 0.6)]  # LOC alone once, EN alone beside it in Korean


def test_per_layer_figure_draws_reference_levels():
    from cla_lib.claims.plots import per_layer_figure

    frame = pd.DataFrame([{"layer": layer, "language": language, "pair": "EN · LOC", "cosine": 0.1 * layer}
                          for layer in range(3) for language in ("ko", "es")])
    ax = per_layer_figure(frame, y="cosine", hue="pair", title="t", ylabel="cosine", reference={"+0.3": 0.3})
    assert any(list(line.get_ydata()) == [0.3, 0.3] for line in ax.get_lines())
    assert ax.get_title() == "t" and ax.get_ylabel() == "cosine"
