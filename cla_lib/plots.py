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


METHOD_PALETTE = {"base": "black", "midalign": sns.color_palette("colorblind")[0],
                  "clo": sns.color_palette("colorblind")[3], "mit": sns.color_palette("colorblind")[2],
                  "replay": "grey"}
METHOD_LABELS = {"base": "base", "midalign": "MidAlign", "clo": "CLO", "mit": "multilingual instruction tuning",
                 "replay": "replay control"}


def erasure_figure(frame: pd.DataFrame, *, title: str, reference: str = "base", chance: dict | None = None,
                   limits: tuple[float, float] | None = None, columns: int = 3):
    """The plane per language (one panel each): arrows from the `reference` model to each method, means over seeds.

    `frame` has one row per (method, seed, language) with transfer and localization (`cla_lib.comparison.evaluate`).
    Small faint markers are the single seeds; the ring (the reference), large markers and arrows are the means over
    seeds. The axes are shared and, without `limits`, zoomed to the data (padded), so that small moves stay visible.

    Returns:
        The matplotlib figure.
    """
    methods = list(dict.fromkeys([reference, *frame["method"]]))
    palette = {method: METHOD_PALETTE.get(method, colour)
               for method, colour in zip(methods, sns.color_palette("tab10", len(methods)))}
    languages = list(dict.fromkeys(frame["language"]))
    rows = -(-len(languages) // columns)
    figure, axes = plt.subplots(rows, min(columns, len(languages)), figsize=(4.3 * min(columns, len(languages)),
                                                                            3.9 * rows + 0.8),
                                sharex=True, sharey=True, squeeze=False)
    data = frame.assign(method_name=frame["method"].map(lambda method: METHOD_LABELS.get(method, method)))
    names = {METHOD_LABELS.get(method, method): colour for method, colour in palette.items()}
    means = data.groupby(["method", "method_name", "language"], sort=False)[["transfer", "localization"]].mean()
    means = means.reset_index()
    if limits is None:
        low = min(data.transfer.min(), data.localization.min(), *(chance or {}).values())
        high = max(data.transfer.max(), data.localization.max())
        pad = max(0.05, 0.08 * (high - low))
        limits = (max(-0.02, low - pad), min(1.02, high + pad))
    for ax, language in zip(axes.flat, languages):
        sns.scatterplot(data=data[data.language == language], x="transfer", y="localization", hue="method_name",
                        palette=names, s=18, alpha=0.35, legend=False, ax=ax)
        here = means[means.language == language]
        sns.scatterplot(data=here[here.method != reference], x="transfer", y="localization", hue="method_name",
                        palette=names, s=60, edgecolor="white", legend=False, ax=ax, zorder=3)
        start = here[here.method == reference]
        # The reference is a ring drawn on top, so that a model that did not move stays visible inside it.
        ax.scatter(start.transfer, start.localization, s=170, facecolors="none",
                   edgecolors=palette[reference], linewidths=1.8, zorder=4)
        if not start.empty:
            x0, y0 = start.transfer.iloc[0], start.localization.iloc[0]
            for _, row in here[here.method != reference].iterrows():
                ax.annotate("", xy=(row.transfer, row.localization), xytext=(x0, y0),
                            arrowprops=dict(arrowstyle="->", color=palette[row.method], lw=1.6, shrinkA=4, shrinkB=4))
        if chance:
            if "transfer" in chance:
                ax.axvline(chance["transfer"], color="grey", ls=":", lw=1)
            if "localization" in chance:
                ax.axhline(chance["localization"], color="grey", ls=":", lw=1)
        ax.set(title=language_label(language), xlim=limits, ylim=limits,
               xlabel="transfer (accuracy)", ylabel="localization (share local)")
    for ax in list(axes.flat)[len(languages):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colour, label=name,
                          markerfacecolor="none" if method == reference else colour, markersize=9 if method ==
                          reference else 7)
               for (method, colour), name in zip(palette.items(), names)]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=9)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure
