"""Figures of the transfer-localization plane. Each says which model and languages produced it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from cla_lib.core.languages import LANGUAGES

LANGUAGE_PALETTE = dict(zip(["es", "zh", "ko", "id", "el", "fa"], sns.color_palette("colorblind", 6)))


def language_label(code: str) -> str:
    return f"{LANGUAGES[code].name} ({code})" if code in LANGUAGES else code


def chance_lines(ax, chance: dict | None) -> None:
    """Dotted lines at chance (``{"transfer": x, "localization": y}``), each labelled, so a printed figure says
    what they are without its caption."""
    for metric, level in (chance or {}).items():
        if metric == "transfer":
            ax.axvline(level, color="grey", ls=":", lw=1)
            ax.annotate("chance", (level, 1), xycoords=("data", "axes fraction"), xytext=(2, -2),
                        textcoords="offset points", fontsize=7, color="grey", ha="left", va="top", rotation=90)
        elif metric == "localization":
            ax.axhline(level, color="grey", ls=":", lw=1)
            ax.annotate("chance", (1, level), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                        textcoords="offset points", fontsize=7, color="grey", ha="right", va="bottom")


def training_loss_figure(losses, *, title: str):
    """A training's loss per step, smoothed (rolling mean over 20 steps) on a log scale, so that a curve that keeps
    falling well below its start can be told from one that stalls."""
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.plot(pd.Series(losses).rolling(20, min_periods=1).mean())
    ax.set(xlabel="training step", ylabel="next-token loss (nats)", yscale="log", title=title)
    return ax


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
    chance_lines(ax, chance)
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
                  "replay": "grey", "replay_attention": "darkgrey"}
METHOD_LABELS = {"base": "base", "midalign": "MidAlign", "clo": "CLO", "mit": "multilingual instruction tuning",
                 "replay": "replay control", "replay_attention": "replay control (attention only)"}


def erasure_figure(frame: pd.DataFrame, *, title: str, reference: str = "base", chance: dict | None = None,
                   limits: tuple[float, float] | None = None, columns: int = 3):
    """The plane per language (one panel each): arrows from the `reference` model to each method, means over seeds.

    `frame` has one row per (method, seed, language) with transfer and localization (`cla_lib.claims.comparison.evaluate`).
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
        chance_lines(ax, chance)
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


def dose_figure(intervals: pd.DataFrame, *, title: str):
    """Δtransfer and Δlocalization against the base at each dose (share of the method's steps; 0 is the base), one
    line per method, the 95% intervals as bars (`cla_lib.claims.doses.dose_intervals`)."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    methods = list(dict.fromkeys(intervals["method"]))
    colours = dict(zip(methods, sns.color_palette("tab10", len(methods))))
    for ax, (half, rows) in zip(axes, intervals.groupby("half", sort=False)):
        for method in methods:
            line = rows[rows.method == method].sort_values("dose")
            doses = [0.0, *line.dose]
            colour = METHOD_PALETTE.get(method, colours[method])
            ax.errorbar(doses, [0.0, *line.estimate], yerr=[[0.0, *(line.estimate - line.low)],
                                                            [0.0, *(line.high - line.estimate)]],
                        marker="o", capsize=3, color=colour, label=METHOD_LABELS.get(method, method),
                        ls="--" if method.startswith("replay") else "-")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(xlabel="dose (share of the method's training steps)", ylabel=f"{half} vs base", title=half)
    axes[0].legend(fontsize=9, frameon=False)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


# ----------------------------------------------------------------------------------------------------------
# Steering: curves over layers, and conditions on the plane


VECTOR_LABELS = {"en": "EN", "loc": "LOC", "loclang": "LOC (language)"}
VECTOR_PALETTE = {"EN": sns.color_palette("colorblind")[0], "LOC": sns.color_palette("colorblind")[3],
                  "LOC (language)": sns.color_palette("colorblind")[4]}


def _spread_lines(data: pd.DataFrame, *, x: str, y: str, hue: str, ax, palette=None, style: str | None = None,
                  legend=True):
    """Mean over languages with a band of ± one standard deviation across them (none with one language)."""
    sns.lineplot(data=data, x=x, y=y, hue=hue, style=style, palette=palette, errorbar="sd", marker="o",
                 markersize=4, ax=ax, legend=legend)


def layer_curves_figure(frame: pd.DataFrame, *, title: str, unsteered: pd.DataFrame | None = None,
                        best: pd.DataFrame | None = None, metrics: tuple[str, ...] = ("transfer", "localization")):
    """A metric as a function of the steering layer: one row of panels per model, one column per metric.

    Args:
        frame: Long rows: model, vector (a label, e.g. "EN"), layer, language, metric, value. Each line is the
            mean over languages, its band ± one standard deviation across them.
        unsteered: Rows model, metric, value: the unsteered model's mean, drawn as a dashed line.
        best: Rows model, vector, metric, layer: the chosen layers, marked with a star on their line.

    Returns:
        The matplotlib figure.
    """
    models = list(dict.fromkeys(frame["model"]))
    figure, axes = plt.subplots(len(models), len(metrics), figsize=(5.2 * len(metrics), 3.4 * len(models) + 0.6),
                                sharex=True, squeeze=False)
    palette = {label: VECTOR_PALETTE.get(label, colour) for label, colour in
               zip(dict.fromkeys(frame["vector"]), sns.color_palette("tab10"))}
    for row, row_label in enumerate(models):
        for column, metric in enumerate(metrics):
            ax = axes[row, column]
            data = frame[(frame["model"] == row_label) & (frame["metric"] == metric)]
            _spread_lines(data, x="layer", y="value", hue="vector", palette=palette, ax=ax, legend=False)
            if unsteered is not None:
                level = unsteered[(unsteered["model"] == row_label) & (unsteered["metric"] == metric)]["value"]
                if len(level):
                    ax.axhline(float(level.mean()), color="black", ls="--", lw=1)
            if best is not None:
                for _, choice in best[(best["model"] == row_label) & (best["metric"] == metric)].iterrows():
                    at = data[(data["vector"] == choice["vector"]) & (data["layer"] == choice["layer"])]["value"]
                    if len(at):
                        ax.scatter([choice["layer"]], [at.mean()], marker="*", s=220, zorder=5,
                                   color=palette.get(choice["vector"], "black"), edgecolors="black", linewidths=0.6)
            ax.set(title=f"{row_label}: {metric}", xlabel="steering layer (0-based)", ylabel=f"{metric} (share)")
            ax.xaxis.get_major_locator().set_params(integer=True)
    handles = [plt.Line2D([], [], color=colour, marker="o", label=label) for label, colour in palette.items()]
    if unsteered is not None:
        handles.append(plt.Line2D([], [], color="black", ls="--", label="unsteered"))
    if best is not None:
        handles.append(plt.Line2D([], [], color="grey", marker="*", ls="", markersize=12, label="best layer"))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=9)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure


def per_layer_figure(frame: pd.DataFrame, *, y: str, hue: str, title: str, ylabel: str, style: str | None = None,
                     reference: dict | None = None, ax=None):
    """One per-layer measure (a cosine, a similarity, a probe accuracy): mean over languages ± their spread.

    `reference` maps labels to horizontal levels drawn dotted (chance, a threshold).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    _spread_lines(frame, x="layer", y=y, hue=hue, style=style, ax=ax)
    for label, level in (reference or {}).items():
        ax.axhline(level, color="grey", ls=":", lw=1)
        ax.annotate(label, (ax.get_xlim()[0], level), fontsize=8, color="grey", va="bottom")
    ax.set(title=title, xlabel="layer (0-based; residual after it)", ylabel=ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return ax


def merged_identical(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (one row per condition and language) with the conditions whose transfer and localization are equal in
    every language merged into one, labelled with their names joined by " = " (in order; the first one's family)."""
    points = {condition: tuple(rows.sort_values("language")[["language", "transfer", "localization"]]
                               .itertuples(index=False, name=None))
              for condition, rows in frame.groupby("condition", sort=False)}
    groups: dict[tuple, list[str]] = {}
    for condition, point in points.items():
        groups.setdefault(point, []).append(condition)
    names = {condition: " = ".join(groups[point]) for condition, point in points.items()}
    return frame.assign(condition=frame["condition"].map(names)).drop_duplicates(["condition", "language"])


CONDITION_MARKERS = {"base": "o", "CLA method": "s", "steering": "^", "prompting": "D", "negative control": "X"}


def conditions_figure(frame: pd.DataFrame, *, title: str, chance: dict | None = None, columns: int = 4):
    """Conditions (models, steering configurations, prompts) on the plane: one panel per language plus the mean.

    Args:
        frame: One row per (condition, language): condition (a label), family (a key of CONDITION_MARKERS),
            language, transfer, localization.
        chance: ``{"transfer": ..., "localization": ...}`` levels drawn dotted.

    Returns:
        The matplotlib figure. Conditions at the very same point in every language (Surgical Steering that chose one
        component alone, a strength-0 configuration and the base) are drawn once, named "A = B".
    """
    frame = merged_identical(frame)
    languages = list(dict.fromkeys(frame["language"]))
    means = frame.groupby(["condition", "family"], sort=False)[["transfer", "localization"]].mean().reset_index()
    panels = [(language_label(language), frame[frame["language"] == language]) for language in languages]
    if len(languages) > 1:
        panels.append(("mean over languages", means))
    width = min(columns, len(panels))
    rows = -(-len(panels) // width)
    figure, axes = plt.subplots(rows, width, figsize=(3.9 * width, 3.7 * rows + 0.9), sharex=True, sharey=True,
                                squeeze=False)
    conditions = list(dict.fromkeys(frame["condition"]))
    family_of = dict(zip(frame["condition"], frame["family"]))
    colours = iter(sns.color_palette("tab10", len(conditions)))
    palette = {condition: "black" if family_of[condition] == "base" else next(colours) for condition in conditions}
    markers = {family: CONDITION_MARKERS.get(family, "X") for family in dict.fromkeys(frame["family"])}
    # Markers shrink down the list and the base is a ring on top, so conditions that land on the same point stay
    # visible as nested shapes.
    sizes = dict(zip(conditions, [230 - 150 * index / max(1, len(conditions) - 1) for index in range(len(conditions))]))
    low = min(frame.transfer.min(), frame.localization.min(), *(chance or {}).values())
    high = max(frame.transfer.max(), frame.localization.max())
    pad = max(0.05, 0.08 * (high - low))
    limits = (max(-0.02, low - pad), min(1.02, high + pad))
    for ax, (name, data) in zip(axes.flat, panels):
        others = data[data["family"] != "base"].assign(order=lambda rows: rows["condition"].map(conditions.index))
        sns.scatterplot(data=others.sort_values("order", kind="stable"), x="transfer", y="localization",
                        hue="condition", style="family", size="condition", palette=palette, markers=markers,
                        sizes=sizes, edgecolor="white", linewidth=0.6, legend=False, ax=ax, zorder=3)
        base = data[data["family"] == "base"]
        ax.scatter(base["transfer"], base["localization"], s=max(sizes.values()), facecolors="none",
                   edgecolors="black", linewidths=1.8, zorder=5)
        chance_lines(ax, chance)
        ax.set(title=name, xlim=limits, ylim=limits, xlabel="transfer (accuracy)", ylabel="localization (share local)")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], marker=markers[family_of[condition]], ls="", color=palette[condition],
                          markerfacecolor="none" if family_of[condition] == "base" else palette[condition],
                          markersize=8, label=condition) for condition in conditions]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False, fontsize=9)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.04 + 0.03 * (-(-len(handles) // 4)), 1, 1))
    return figure
