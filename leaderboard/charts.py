"""Altair charts shared by the pages: one fixed colour per architecture, padded axes, chance lines, error bars.

Pure functions (DataFrame in, chart out) so tests can build them without Streamlit. Every chart colours points by
architecture through the same ``(domain, range)`` scale (``queries.arch_scale``), so an architecture keeps its
colour from page to page.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

FRONT_SHAPE = "diamond"


def color(domain: list[str], colors: list[str], title: str = "architecture") -> alt.Color:
    return alt.Color("arch:N", title=title, scale=alt.Scale(domain=domain, range=colors),
                     legend=alt.Legend(orient="right", symbolLimit=40))


def padded_log(values: pd.Series, pad: float = 1.6, labels: bool = True) -> alt.Scale:
    """A log scale whose domain leaves room around the points (nothing sits on the frame), and on the right for the
    labels of the last points."""
    v = values[values > 0].astype(float)
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (1.0, 10.0)
    if hi <= lo:
        lo, hi = lo / 3, hi * 3
    right = (hi / lo) ** 0.25 if labels else 1.0  # about a fifth of the width again, for text
    return alt.Scale(type="log", domain=[lo / pad, hi * pad * max(1.0, right)], nice=False)


def padded_linear(values: pd.Series, unit: bool, pad: float = 0.06) -> alt.Scale:
    """[0, 1] with a margin for scores in the unit interval; the data range plus a margin otherwise."""
    v = values.dropna().astype(float)
    if unit:
        return alt.Scale(domain=[-pad, 1 + pad], nice=False, clamp=False)
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
    span = (hi - lo) or abs(hi) or 1.0
    return alt.Scale(domain=[lo - pad * span, hi + pad * span], nice=False)


def score_axis(pts: pd.DataFrame, head: dict[str, Any]) -> tuple[str, bool, float | None]:
    """(y title, unit interval?, chance level on that axis): normalized scores put chance at 0."""
    if pts["normalized_mean"].notna().any():
        return "normalized score (0 = chance, 1 = perfect)", True, 0.0
    chance = head.get("chance")
    chance = None if chance is None or (isinstance(chance, float) and math.isnan(chance)) else float(chance)
    unit = bool(pts["y"].between(0, 1).all())
    return str(head.get("metric") or "score"), unit, chance


def _chance_layer(scale: alt.Scale, chance: float | None, field: str = "y") -> list[alt.Chart]:
    if chance is None:
        return []
    df = pd.DataFrame({field: [chance], "label": ["chance"]})
    rule = alt.Chart(df).mark_rule(color="#9a9a9a", strokeDash=[2, 3]).encode(y=alt.Y(f"{field}:Q", scale=scale))
    text = alt.Chart(df).mark_text(align="left", dx=4, dy=-6, color="#7a7a7a", fontSize=11).encode(
        y=alt.Y(f"{field}:Q", scale=scale), text="label:N", x=alt.value(2))
    return [rule, text]


def _tooltip(cost_title: str) -> list[alt.Tooltip]:
    return [alt.Tooltip("arch:N"), alt.Tooltip("size:N"), alt.Tooltip("variant:N"), alt.Tooltip("n:Q", title="seeds"),
            alt.Tooltip("score_mean:Q", title="score", format=".3f"),
            alt.Tooltip("normalized_mean:Q", title="norm. score", format=".3f"),
            alt.Tooltip("normalized_std:Q", title="± std", format=".3f"),
            alt.Tooltip("cost:Q", title=cost_title, format=".4~s"), alt.Tooltip("hardware:N"),
            alt.Tooltip("run_ids:N", title="runs"), alt.Tooltip("on_front:N", title="on front")]


def pareto(pts: pd.DataFrame, cost_title: str, domain: list[str], colors: list[str], head: dict[str, Any],
           height: int = 430) -> alt.LayerChart:
    """Score vs cost (log x): every row a point with its ± std bar; the front as labelled diamonds on a dashed line."""
    title, unit, chance = score_axis(pts, head)
    x = alt.X("cost:Q", scale=padded_log(pts["cost"]), title=cost_title + " (log scale)")
    ys = padded_linear(pd.concat([pts["y"], pts["y_lo"], pts["y_hi"]]), unit)
    y = alt.Y("y:Q", scale=ys, title=title)
    base = alt.Chart(pts).encode(x=x, y=y, color=color(domain, colors))
    bars = alt.Chart(pts[pts["y_lo"].notna()]).mark_rule(opacity=0.6).encode(
        x=x, y=alt.Y("y_lo:Q", scale=ys, title=title), y2="y_hi:Q", color=color(domain, colors))
    off = base.transform_filter(~alt.datum.on_front).mark_point(filled=True, size=60, opacity=0.6).encode(
        tooltip=_tooltip(cost_title))
    front_pts = pts[pts["on_front"]].sort_values("cost")
    line = alt.Chart(front_pts).mark_line(color="#444", strokeDash=[5, 4], strokeWidth=1.2).encode(
        x=x, y=y, order="cost:Q")
    front = alt.Chart(front_pts).mark_point(shape=FRONT_SHAPE, filled=True, size=170, opacity=1, stroke="#222",
                                            strokeWidth=0.8).encode(x=x, y=y, color=color(domain, colors),
                                                                    tooltip=_tooltip(cost_title))
    labels = alt.Chart(front_pts).mark_text(align="left", dx=9, fontSize=11, color="#333").encode(
        x=x, y=y, text="label:N", yOffset="label_dy:Q")
    layers = [*_chance_layer(ys, chance), bars, line, off, front, labels]
    return alt.layer(*layers).properties(height=height).interactive()


def bubbles(pts: pd.DataFrame, domain: list[str], colors: list[str], head: dict[str, Any],
            height: int = 400) -> alt.LayerChart:
    """Score vs p50 latency (log x), bubble area = parameters, colour = architecture."""
    title, unit, chance = score_axis(pts, head)
    x = alt.X("cost:Q", scale=padded_log(pts["cost"]), title="latency p50, ms (batch 1, log scale)")
    ys = padded_linear(pts["y"], unit)
    y = alt.Y("y:Q", scale=ys, title=title)
    size = alt.Size("params_total:Q", title="parameters", scale=alt.Scale(type="sqrt", range=[30, 1800]),
                    legend=alt.Legend(format=".2~s", tickCount=3))
    points = alt.Chart(pts).mark_circle(opacity=0.55, stroke="white", strokeWidth=0.7).encode(
        x=x, y=y, size=size, color=color(domain, colors),
        tooltip=[*_tooltip("latency ms"), alt.Tooltip("params_total:Q", title="params", format=".3~s")])
    labels = alt.Chart(pts[pts["on_front"]]).mark_text(align="left", dx=10, fontSize=11, color="#333").encode(
        x=x, y=y, text="label:N", yOffset="label_dy:Q")
    return alt.layer(*_chance_layer(ys, chance), points, labels).properties(height=height).interactive()


def depth(curves: pd.DataFrame, metric: str, domain: list[str], colors: list[str], boundary: float | None,
          chance: float | None, height: int = 420) -> alt.LayerChart:
    """Mean score by depth per leaderboard row, ± std band, the chance line and the deepest training depth."""
    unit = bool(curves[["mean"]].stack().between(0, 1).all())
    lo = curves["mean"] - curves["std"].fillna(0)
    hi = curves["mean"] + curves["std"].fillna(0)
    data = curves.assign(lo=lo.clip(lower=0) if unit else lo, hi=hi.clip(upper=1) if unit else hi)
    dmin, dmax = float(data["depth"].min()), float(data["depth"].max())
    x = alt.X("depth:Q", title="depth", axis=alt.Axis(tickMinStep=1, format="d"),
              scale=alt.Scale(domain=[dmin - 0.3, dmax + 0.3], nice=False))
    ys = padded_linear(data["mean"], unit)
    y = alt.Y("mean:Q", title=f"{metric} (mean over seeds)", scale=ys)
    col = color(domain, colors)
    band = alt.Chart(data).mark_area(opacity=0.14).encode(
        x=x, y=alt.Y("lo:Q", scale=ys, title=f"{metric} (mean over seeds)"), y2="hi:Q",
        fill=alt.Fill("arch:N", scale=alt.Scale(domain=domain, range=colors), legend=None), detail="row:N")
    lines = alt.Chart(data).mark_line(point=True, strokeWidth=2).encode(
        x=x, y=y, color=col, detail="row:N", strokeDash=alt.StrokeDash("size:N", title="size"),
        tooltip=["row:N", "eval_split:N", "depth:Q", alt.Tooltip("mean:Q", format=".3f"),
                 alt.Tooltip("std:Q", format=".3f"), alt.Tooltip("n_runs:Q", title="seeds")])
    layers: list[Any] = [band, lines, *_chance_layer(ys, chance, "mean")]
    if boundary is not None and dmin <= boundary < dmax:
        edge = pd.DataFrame({"depth": [boundary + 0.5], "label": [f"trained up to depth {boundary:g}"]})
        layers.append(alt.Chart(edge).mark_rule(color="#555", strokeDash=[6, 3]).encode(x="depth:Q"))
        layers.append(alt.Chart(edge).mark_text(align="left", dx=5, baseline="top", color="#555", fontSize=11).encode(
            x="depth:Q", y=alt.value(4), text="label:N"))
    # independent legends: the band's hidden fill legend must not hide the lines' colour legend
    return alt.layer(*layers).resolve_legend(color="independent", fill="independent").properties(height=height)


def lr_heatmap(table: pd.DataFrame, height_per_row: int = 40) -> alt.LayerChart:
    """Architecture x task: the fraction of the learning-rate grid that reaches the gate, with the k/n count."""
    data = table.assign(text=[f"{r} / {n}" for r, n in zip(table["n_reach"], table["n_lrs"], strict=True)])
    base = alt.Chart(data).encode(x=alt.X("arch:N", title="architecture", axis=alt.Axis(labelAngle=0)),
                                  y=alt.Y("task:N", title=None))
    rect = base.mark_rect(stroke="white").encode(
        color=alt.Color("fraction:Q", title="share of LRs reaching the gate",
                        scale=alt.Scale(domain=[0, 1], scheme="blues")),
        tooltip=["task:N", "arch:N", "size:N", "options:N", alt.Tooltip("fraction:Q", format=".0%"), "lrs:N",
                 "best_val_lr:Q"])
    text = base.mark_text(fontSize=12).encode(
        text="text:N", color=alt.condition(alt.datum.fraction > 0.55, alt.value("white"), alt.value("#222")))
    return alt.layer(rect, text).properties(height=alt.Step(height_per_row))

