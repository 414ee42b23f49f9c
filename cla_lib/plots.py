"""Figures of the transfer-localization plane. Each says which model and languages produced it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from cla_lib.languages import LANGUAGES

LANGUAGE_PALETTE = dict(zip(["es", "zh", "ko", "id", "el", "fa"], sns.color_palette("colorblind", 6)))


def language_label(code: str) -> str:
    return f"{LANGUAGES[code].name} ({code})" if code in LANGUAGES else code


def plane_figure(frame: pd.DataFrame, *, title: str, hue: str = "language", style: str | None = None,
                 chance: dict | None = None, ax=None):
    """Scatter of (transfer, localization) per row of `frame`, with 95% interval bars when present.

    `frame` has columns transfer, localization, language (and transfer_interval / localization_interval lists).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5.2))
    palette = LANGUAGE_PALETTE if hue == "language" else None
    data = frame.assign(language_name=frame["language"].map(language_label))
    if "transfer_interval" in frame and "localization_interval" in frame:
        for _, row in frame.iterrows():
            colour = LANGUAGE_PALETTE.get(row["language"], "grey") if hue == "language" else "grey"
            ax.errorbar(row["transfer"], row["localization"],
                        xerr=[[row["transfer"] - row["transfer_interval"][0]],
                              [row["transfer_interval"][1] - row["transfer"]]],
                        yerr=[[row["localization"] - row["localization_interval"][0]],
                              [row["localization_interval"][1] - row["localization"]]],
                        fmt="none", ecolor=colour, alpha=0.35, lw=1)
    sns.scatterplot(data=data, x="transfer", y="localization", hue=hue if hue != "language" else "language",
                    style=style, palette=palette, s=90, ax=ax, zorder=3)
    if chance:
        if "transfer" in chance:
            ax.axvline(chance["transfer"], color="grey", ls=":", lw=1)
        if "localization" in chance:
            ax.axhline(chance["localization"], color="grey", ls=":", lw=1)
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=title,
           xlabel="transfer: accuracy on English-only facts asked in the language",
           ylabel="localization: share of culture questions given the local answer")
    if hue == "language":
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [language_label(label) if label in LANGUAGES else label for label in labels],
                  loc="lower left", fontsize=8, frameon=True)
    return ax
