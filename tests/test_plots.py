"""Tests for cla_lib.plots: the plane figure says which languages it shows, where they stand, and how sure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cla_lib.plots import language_label, plane_figure  # noqa: E402

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
