#!/usr/bin/env python3
"""Critical-period table and curves from a critlab sweep's Parquet logs.

    python tools/analyze.py SWEEP_DIR_OR_PARQUET [--out plot.png] [--csv table.csv]
    python tools/analyze.py --selftest

Input: a ``sweep.parquet``, a folder holding one, or a folder of runs (each
``RUN/metrics.parquet``, searched recursively). The columns are those of
docs/design.md ("Parquet logs"). Runs read from bare metrics.parquet files
have no ``sweep``/``variant``/``point`` columns; they are derived from the
deficit columns: no deficit -> ``baseline`` (point -1), a first window that
starts at epoch 0 -> ``removal`` at its end epoch, any other -> ``window``
at its onset epoch.

Per run, the final test accuracy is ``test_acc`` of its last evaluated
epoch, and the secondary one the mean over its last 5 evaluated epochs
(fewer if it has fewer). Per (sweep, model, dataset, variant,
point) the table gives the number of runs (seeds), the mean and the
sample standard deviation (ddof 1) of the final accuracy over them, and
the change of the mean from its reference, as ``critlab report`` computes
it (runs.ReferenceFor; ``REFERENCE_RULES`` here): each arm against the
first of its candidates that the sweep has. Removal points,
``control-vflip`` and ``control-noise`` at T against ``control-sham`` at
T, else ``reference-same-epochs`` at T, else removal point 0 (as many sharp
epochs after the deficit); ``control-lr-restart`` against
``control-sham-lr-restart`` at T; windows and their controls against
``window-control-sham`` (``-sham-lr-restart``) at the onset, else the
``baseline``; ``finetune`` and ``scratch`` against ``scratch``; everything
else against the ``baseline``; removal point 0 and the baseline stand in
for each other when one is missing.

The numbers are computed with polars and again with pandas; the script
stops with an error if the two disagree (by more than 1e-12).

The plot (needs matplotlib, optional) has two panels: final accuracy vs
point for every variant but ``window`` and ``baseline`` (for ``removal``
the point is the epoch the deficit is removed), with the baseline as a
band; and the accuracy change vs window onset for ``window`` runs.
"""
from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import tempfile

import numpy as np
import pandas as pd
import polars as pl

LAST_EPOCHS = 5  # K of the secondary final: the mean of the last K evaluated epochs
MIN_INTERVAL_N = 3  # fewest paired seeds an interval or a TOST is given for (as critlab report)
CONFIDENCE = 0.95
GROUP = ["sweep", "model", "dataset", "variant", "point"]
RUN = ["sweep", "run_id"]
BASE = ["sweep", "model", "dataset"]
RUN_COLUMNS = RUN + ["model", "dataset", "variant", "point", "seed", "final_acc", "lastk_acc", "warning"]
TABLE_COLUMNS = GROUP + ["n", "seeds", "acc_mean", "acc_std", "lastk_mean", "reference", "diff_n", "diff_mean",
                         "diff_low", "diff_high", "diff_by_seed", "diff_lastk_mean"]
# variant -> candidate references, best first: (variant, point), where a
# point of None means the arm's own point. Mirrors runs.ReferenceFor.
_REMOVAL0, _BASELINE = ("removal", 0), ("baseline", -1)
REFERENCE_RULES = {
    **{v: [("control-sham", None), ("reference-same-epochs", None), _REMOVAL0, _BASELINE]
       for v in ["removal", "control-vflip", "control-noise"]},
    "control-sham": [("reference-same-epochs", None), _REMOVAL0, _BASELINE],
    "control-lr-restart": [("control-sham-lr-restart", None), _REMOVAL0, _BASELINE],
    "control-sham-lr-restart": [_REMOVAL0, _BASELINE],
    "reference-same-epochs": [_REMOVAL0, _BASELINE],
    **{v: [("window-control-sham", None), _BASELINE, _REMOVAL0]
       for v in ["window", "window-control-vflip", "window-control-noise"]},
    "window-control-lr-restart": [("window-control-sham-lr-restart", None), _BASELINE, _REMOVAL0],
    "finetune": [("scratch", 0)],
    "scratch": [("scratch", 0)],
}
DEFAULT_RULES = [_BASELINE, _REMOVAL0]
REQUIRED = ["run_id", "model", "dataset", "seed", "epoch", "deficit", "deficit_start", "deficit_end",
            "deficit_windows", "test_acc"]


class AnalyzeError(Exception):
    """Bad input: no Parquet files, missing columns, or disagreeing results."""


# ---------------------------------------------------------------- input


def find_parquet(path: str) -> list[str]:
    """The Parquet files to read for a file or folder argument."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise AnalyzeError(f"{path}: no such file or folder")
    sweep = os.path.join(path, "sweep.parquet")
    if os.path.isfile(sweep):
        return [sweep]
    files = sorted(glob.glob(os.path.join(path, "**", "metrics.parquet"), recursive=True))
    if not files:
        raise AnalyzeError(f"{path}: no sweep.parquet and no */metrics.parquet below it")
    return files


def _check_columns(cols, path: str) -> None:
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise AnalyzeError(f"{path}: missing columns {missing} (see docs/design.md, Parquet logs)")


def load_polars(files: list[str], sweep_name: str = "") -> pl.DataFrame:
    frames = []
    for f in files:
        df = pl.read_parquet(f)
        _check_columns(df.columns, f)
        frames.append(df)
    df = pl.concat(frames, how="diagonal_relaxed")
    if "sweep" not in df.columns:
        df = df.with_columns(pl.lit(sweep_name).alias("sweep"))
    if "variant" not in df.columns or "point" not in df.columns:
        variant = (pl.when(pl.col("deficit_start") < 0).then(pl.lit("baseline"))
                   .when(pl.col("deficit_start") == 0).then(pl.lit("removal"))
                   .otherwise(pl.lit("window")))
        point = (pl.when(pl.col("deficit_start") < 0).then(-1)
                 .when(pl.col("deficit_start") == 0).then(pl.col("deficit_end"))
                 .otherwise(pl.col("deficit_start")))
        df = df.with_columns(variant.alias("variant"), point.cast(pl.Int32).alias("point"))
    return df.with_columns(pl.col("point").cast(pl.Int64), pl.col("seed").cast(pl.Int64),
                           pl.col("epoch").cast(pl.Int64), pl.col("test_acc").cast(pl.Float64))


def load_pandas(files: list[str], sweep_name: str = "") -> pd.DataFrame:
    frames = []
    for f in files:
        df = pd.read_parquet(f)
        _check_columns(df.columns, f)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    if "sweep" not in df.columns:
        df["sweep"] = sweep_name
    if "variant" not in df.columns or "point" not in df.columns:
        start = df["deficit_start"]
        df["variant"] = np.where(start < 0, "baseline", np.where(start == 0, "removal", "window"))
        df["point"] = np.where(start < 0, -1, np.where(start == 0, df["deficit_end"], start))
    return df.astype({"point": "int64", "seed": "int64", "epoch": "int64", "test_acc": "float64"})


# ---------------------------------------------------------------- table


def runs_polars(df: pl.DataFrame, last: int = LAST_EPOCHS) -> pl.DataFrame:
    """Per run: the last evaluated epoch's test accuracy and the mean of the last K evaluated epochs."""
    ev = (df.unique(subset=RUN + ["epoch"], keep="last", maintain_order=True)
            .filter(pl.col("test_acc").is_not_null() & pl.col("test_acc").is_not_nan())
            .sort(RUN + ["epoch"]))
    tail = ev.group_by(RUN, maintain_order=True).tail(last)
    runs = (tail.group_by(RUN + ["model", "dataset", "variant", "point", "seed"], maintain_order=True)
                .agg(pl.col("test_acc").last().alias("final_acc"), pl.col("test_acc").mean().alias("lastk_acc"),
                     pl.len().alias("_k"), pl.col("epoch").filter(pl.col("deficit") != "none").alias("_def")))
    warn = []
    for k, d in zip(runs["_k"].to_list(), runs["_def"].to_list()):
        warn.append(_warning(k, d, last))
    return runs.with_columns(pl.Series("warning", warn, dtype=pl.String)).select(RUN_COLUMNS).sort(RUN)


def runs_pandas(df: pd.DataFrame, last: int = LAST_EPOCHS) -> pd.DataFrame:
    """runs_polars with pandas, for the cross-check."""
    df = df.drop_duplicates(subset=RUN + ["epoch"], keep="last")
    df = df[df["test_acc"].notna()].sort_values(RUN + ["epoch"], kind="stable")
    tail = df.groupby(RUN, sort=False).tail(last)
    rows = []
    for key, g in tail.groupby(RUN + ["model", "dataset", "variant", "point", "seed"], sort=False):
        deficit = g.loc[g["deficit"] != "none", "epoch"].tolist()
        rows.append(list(key) + [g["test_acc"].iloc[-1], g["test_acc"].mean(), _warning(len(g), deficit, last)])
    out = pd.DataFrame(rows, columns=RUN + ["model", "dataset", "variant", "point", "seed", "final_acc", "lastk_acc", "warning"])
    return out[RUN_COLUMNS].sort_values(RUN, kind="stable").reset_index(drop=True)


def _warning(k: int, deficit_epochs, last: int) -> str:
    """Why a run's last-K mean is not over K sharp epochs (critlab report's wording); "" when it is."""
    why = []
    if k < last:
        why.append(f"only {k} evaluated epochs, fewer than K = {last}")
    if len(deficit_epochs):
        why.append(f"the last-{last} window includes deficit epochs {','.join(str(e) for e in deficit_epochs)}")
    return "; ".join(why)


def reference_name(variant: str, point: int, have) -> str:
    """The point an arm's differences are paired with (as critlab report's Reference): the first of
    REFERENCE_RULES[variant] in have, named as the report names it; "" for none."""
    for v, p in REFERENCE_RULES.get(variant, DEFAULT_RULES):
        p = point if p is None else p
        if (v, p) in have:
            return "baseline" if v == "baseline" else f"{v}@{p}"
    return ""


def _ref_key(name: str):
    if name == "baseline":
        return ("baseline", -1)
    v, p = name.rsplit("@", 1)
    return (v, int(p))


def paired(diffs: np.ndarray) -> tuple[int, float, float, float]:
    """n, mean and the CONFIDENCE t-interval of paired differences (NaN bounds when n < MIN_INTERVAL_N)."""
    from scipy import stats
    n = len(diffs)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    mean = float(np.mean(diffs))
    if n < MIN_INTERVAL_N:
        return n, mean, math.nan, math.nan
    h = float(stats.t.ppf(1 - (1 - CONFIDENCE) / 2, n - 1)) * float(np.std(diffs, ddof=1)) / math.sqrt(n)
    return n, mean, mean - h, mean + h


def tost(diffs, margin: float) -> float:
    """Two one-sided t-tests of |mean difference| < margin (same unit as diffs): the larger one-sided
    p-value; p < alpha supports equivalence within ±margin. NaN when n < MIN_INTERVAL_N."""
    from scipy import stats
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n < MIN_INTERVAL_N or margin <= 0:
        return math.nan
    mean, se = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    lower = stats.t.sf((mean + margin) / se, n - 1)
    upper = stats.t.cdf((mean - margin) / se, n - 1)
    return float(max(lower, upper))


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, model, dataset, variant, point): n, seeds, mean and std (ddof 1) of the final accuracy,
    the mean last-K accuracy, and the paired differences from the reference runs of the same seeds."""
    rows = []
    for base, part in runs.groupby(BASE, sort=True):
        have = set(zip(part["variant"], part["point"]))
        by = {k: g.set_index("seed") for k, g in part.groupby(["variant", "point"])}
        for (variant, point), g in sorted(by.items()):
            ref = reference_name(variant, point, have)
            r = by[_ref_key(ref)] if ref else None
            seeds = sorted(g.index) if r is None else sorted(set(g.index) & set(r.index))
            d = np.array([g.loc[s, "final_acc"] - r.loc[s, "final_acc"] for s in seeds]) if r is not None else np.array([])
            dk = np.array([g.loc[s, "lastk_acc"] - r.loc[s, "lastk_acc"] for s in seeds]) if r is not None else np.array([])
            n, mean, lo, hi = paired(d)
            rows.append(list(base) + [variant, point, len(g), ",".join(str(s) for s in sorted(g.index)),
                                      g["final_acc"].mean(), g["final_acc"].std(ddof=1), g["lastk_acc"].mean(),
                                      ref, n, mean, lo, hi, " ".join(repr(float(x)) for x in d),
                                      float(dk.mean()) if len(dk) else math.nan])
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def cross_check(rp: pl.DataFrame, rd: pd.DataFrame, tol: float = 1e-12) -> None:
    """Raise AnalyzeError unless the polars and pandas per-run tables agree."""
    a = rp.to_pandas()
    if len(a) != len(rd):
        raise AnalyzeError(f"polars has {len(a)} runs, pandas {len(rd)}")
    for c in RUN + ["variant", "point", "seed", "warning"]:
        if list(a[c].astype(str)) != list(rd[c].astype(str)):
            raise AnalyzeError(f"polars and pandas disagree on column {c}")
    for c in ["final_acc", "lastk_acc"]:
        x, y = a[c].to_numpy(dtype=float), rd[c].to_numpy(dtype=float)
        bad = ~((np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= tol))
        if bad.any():
            i = int(np.argmax(bad))
            raise AnalyzeError(f"polars and pandas disagree on {c} in row {i}: {x[i]!r} vs {y[i]!r}")


def load_runs(path: str) -> tuple[pl.DataFrame, pd.DataFrame]:
    """The epoch rows (polars) and the cross-checked per-run table (pandas) of path."""
    files = find_parquet(path)
    name = os.path.basename(os.path.normpath(path if os.path.isdir(path) else os.path.dirname(path) or "."))
    rows = load_polars(files, name)
    rp = runs_polars(rows)
    rd = runs_pandas(load_pandas(files, name))
    cross_check(rp, rd)
    return rows, rd


def analyze(path: str) -> pd.DataFrame:
    """Load path with both libraries, cross-check the per-run finals and build the paired table."""
    return table(load_runs(path)[1])


def _pct(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{100 * v:.2f}"


def _signed(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{100 * v:+.2f}"


def format_table(tab: pd.DataFrame, runs: pd.DataFrame | None = None) -> str:
    """The table as aligned text, accuracies in percent, differences in points."""
    head = ["sweep", "variant", "point", "n", "final %", f"last-{LAST_EPOCHS} %", "Δ final", "95% CI",
            f"Δ last-{LAST_EPOCHS}", "Δ by seed", "vs"]
    rows = []
    few = False
    for r in tab.to_dict("records"):
        if r["variant"] == "trunk":
            continue
        if r["diff_n"] == 0:
            ci = "-"
        elif r["diff_n"] < MIN_INTERVAL_N:
            ci, few = f"n<{MIN_INTERVAL_N}", True
        else:
            ci = f"[{_signed(r['diff_low'])}, {_signed(r['diff_high'])}]"
        by_seed = " ".join(_signed(float(x)) for x in r["diff_by_seed"].split()) or "-"
        rows.append([r["sweep"], r["variant"], str(r["point"]), str(r["n"]), _pct(r["acc_mean"]), _pct(r["lastk_mean"]),
                     _signed(r["diff_mean"]), ci, _signed(r["diff_lastk_mean"]), by_seed, r["reference"] or "-"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    out = [f"final = test accuracy of the last evaluated epoch; last-{LAST_EPOCHS} = mean of the last {LAST_EPOCHS} "
           f"evaluated epochs; Δ = paired difference from the reference run (vs) of the same seed, in points, "
           f"mean and {100 * CONFIDENCE:.0f}% t-interval over n seeds"]
    if few:
        out.append(f"n < {MIN_INTERVAL_N}: no interval is given (too few seeds to estimate the spread of Δ)")
    for row in [head] + rows:
        out.append("  ".join(c.ljust(w) if i in (0, 1) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    if runs is not None:
        out += warnings(runs)
    return "\n".join(out) + "\n"


def warnings(runs: pd.DataFrame) -> list[str]:
    """The runs' last-K warnings, one line per (variant, point) and text, as critlab report prints them."""
    groups: dict[tuple, list] = {}
    for r in runs.sort_values(["variant", "point", "seed"], kind="stable").to_dict("records"):
        if r["warning"] and r["variant"] != "trunk":
            groups.setdefault((r["variant"], r["point"], r["warning"]), []).append(r)
    lines = []
    for (variant, point, text), rs in groups.items():
        if len(rs) == 1:
            lines.append(f"warning: {rs[0]['run_id']}: {text}")
            continue
        label = "baseline" if variant == "baseline" else f"{variant}@{point}"
        seeds = ",".join(str(r["seed"]) for r in rs)
        lines.append(f"warning: {label}, {len(rs)} runs (seeds {seeds}): {text}")
    return lines


# ---------------------------------------------------------------- plot


def diff_panels(part: pd.DataFrame, sym: str) -> list[tuple[str, pd.DataFrame]]:
    """A family's rows split by kind of reference, those at the same point first (critlab report's
    diffPanels): one zero line per panel. A row that is its own reference (removal@0) anchors its
    variant's line where that variant has other rows in its panel and is dropped elsewhere."""
    kinds, self_rows = {}, []
    for i, r in part.iterrows():
        rv, rp = _ref_key(r["reference"])
        if (rv, rp) == (r["variant"], r["point"]):
            self_rows.append(i)
            continue
        same = (rv, None) in REFERENCE_RULES.get(r["variant"], DEFAULT_RULES) and rp == r["point"]
        kinds.setdefault((not same, f"{rv} at the same {sym}" if same else r["reference"]), []).append(i)
    for i in self_rows:
        r = part.loc[i]
        for (_, kind), rows in kinds.items():
            if kind == r["reference"] and (part.loc[rows, "variant"] == r["variant"]).any():
                rows.append(i)
    order = sorted(kinds, key=lambda k: k[0])  # stable: same-point panels first
    return [(kind, part.loc[sorted(kinds[(fixed, kind)], key=lambda i: (list(part.index).index(i)))])
            for fixed, kind in order]


def plot(tab: pd.DataFrame, out: str | None = None):
    """The paired differences vs point: removal and its controls, windows and theirs, one panel per kind
    of reference (critlab report's removal and window figures). Returns the figure; saves it to out
    (PNG/SVG by extension) when given."""
    import matplotlib.pyplot as plt
    fams = [("removal", "epoch T the deficit is removed", "T", lambda v: v == "removal" or v.startswith("control-")),
            ("window", "window onset (epoch)", "S", lambda v: v.startswith("window"))]
    panels = []
    for title, xlabel, sym, member in fams:
        part = tab[tab["variant"].map(member) & (tab["diff_n"] > 0)]
        if len(part):
            ps = diff_panels(part, sym)
            for k, (kind, rows) in enumerate(ps):
                name = f"Deficit {title}" if len(ps) == 1 else f"({'abcdefgh'[k]}) against {kind}"
                panels.append((name, xlabel, part, rows, kind if len(ps) > 1 else None, title))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 4), squeeze=False)
    ns = sorted(set(int(n) for n in tab["diff_n"] if n > 0))
    colors = {v: f"C{i % 10}" for i, v in enumerate(dict.fromkeys(tab["variant"]))}
    for ax, (title, xlabel, family, part, kind, main) in zip(axes[0], panels):
        span = max(1, family["point"].max() - family["point"].min())
        groups = sorted(part.groupby("variant", sort=False), key=lambda g: g[0] != main)  # the main variant first
        for i, (variant, v) in enumerate(groups):
            v = v.sort_values("point")
            x = v["point"].to_numpy() + 0.035 * span * i
            y = 100 * v["diff_mean"].to_numpy()
            line = ax.plot(x, y, marker="osD^v"[i % 5], ms=7, lw=1.5 if variant == main and len(x) > 1 else 0,
                           color=colors[variant], label=f"{variant} (mean)")[0]
            for xi, d in zip(x, v["diff_by_seed"]):
                ds = [100 * float(t) for t in d.split()]
                ax.plot([xi] * len(ds), ds, "o", mfc="none", ms=4, color=line.get_color())
            ci = v["diff_low"].notna().to_numpy()
            if ci.any():
                ax.errorbar(x[ci], y[ci], yerr=[y[ci] - 100 * v["diff_low"].to_numpy()[ci],
                                                100 * v["diff_high"].to_numpy()[ci] - y[ci]],
                            fmt="none", capsize=3, color=line.get_color())
        refs = ", ".join(sorted(set(part["reference"])))
        ax.axhline(0, color="gray", ls="--", lw=1, label=f"zero line: {kind}" if kind else f"reference ({refs})")
        ax.plot([], [], "o", mfc="none", color="black", ms=4, label="single seeds")
        ax.set(title=title, xlabel=xlabel, ylabel="Δ final test accuracy (points)")
        ax.set_xlim(family["point"].min() - 0.08 * span, family["point"].max() + 0.12 * span)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    n = "/".join(str(k) for k in ns)
    note = (f"no interval where n < {MIN_INTERVAL_N}" if ns and min(ns) < MIN_INTERVAL_N
            else f"bars: {100 * CONFIDENCE:.0f}% t-interval")
    fig.text(0.01, 0.01, f"Δ = last-epoch test accuracy minus the panel's reference run of the same seed (the zero "
                         f"line); filled: mean over n = {n} seeds; rings: single seeds; {note}.", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    if out:
        fig.savefig(out, dpi=200, bbox_inches="tight")
    return fig


def plot_curves(rows: pl.DataFrame, tab: pd.DataFrame, out: str | None = None, value: str = "test_acc"):
    """One panel per (variant, point) but the trunk: the mean over seeds of value (evaluated epochs only)
    with the range over seeds as a band, the reference's in grey (shifted to end with the arm where it is
    shorter), deficit epochs shaded, one x and y scale; one colour per
    variant, legend outside the panels (critlab report's curves figure)."""
    import matplotlib.pyplot as plt
    df = rows.filter(pl.col(value).is_not_null()).to_pandas()
    arms = [(r["variant"], r["point"], r["reference"]) for r in tab.to_dict("records") if r["variant"] != "trunk"]
    cols = min(4, len(arms))
    nrows = (len(arms) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols + 1.6, 2.3 * nrows), squeeze=False, sharey=True, sharex=True)
    colors = {}
    for v in [a[0] for a in arms if a[0] != "baseline"]:
        colors.setdefault(v, f"C{len(colors) % 10}")
    colors["baseline"] = "black"

    def band(v, p):
        g = df[(df["variant"] == v) & (df["point"] == p)]
        seeds = g["seed"].nunique()
        g = g.groupby("epoch").filter(lambda e: e["seed"].nunique() == seeds).groupby("epoch")[value]
        return g.mean(), g.min(), g.max()

    handles = {}
    for ax, (v, p, ref) in zip(axes.flat, arms):
        one = df[(df["variant"] == v) & (df["point"] == p)]
        first = one[one["run_id"] == one["run_id"].iloc[0]]
        for e in first.loc[first["deficit"] != "none", "epoch"]:
            ax.axvspan(e, e + 1, color="0.85", lw=0)
        title = v if p < 0 else f"{v} at {p}"
        m, lo, hi = band(v, p)
        if ref and ref != ("baseline" if v == "baseline" else f"{v}@{p}"):
            title += f"\nvs {ref}"
            rm, rlo, rhi = band(*_ref_key(ref))
            # A shorter reference ends where the arm ends: the gap at the right edge is the paired Δ.
            x = rm.index + 1 + max(0, m.index.max() - rm.index.max())
            ax.fill_between(x, 100 * rlo, 100 * rhi, color="0.5", alpha=0.25, lw=0)
            handles["its reference"] = ax.plot(x, 100 * rm, color="0.45", lw=1)[0]
        ax.fill_between(m.index + 1, 100 * lo, 100 * hi, color=colors[v], alpha=0.25, lw=0)
        handles.setdefault(v, ax.plot(m.index + 1, 100 * m, color=colors[v], lw=1.5)[0])
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(arms):]:
        ax.axis("off")
    for ax in axes.flat[:len(arms)]:
        ax.set_xlim(0, df["epoch"].max() + 1)
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("epochs trained")
    for ax in axes[:, 0]:
        ax.set_ylabel(value.replace("_", " ") + (" %" if value == "test_acc" else ""))
    from matplotlib.patches import Patch
    handles["deficit epochs"] = Patch(color="0.85")
    fig.legend(handles.values(), handles.keys(), loc="upper left", bbox_to_anchor=(1.0, 0.98), fontsize=8)
    fig.tight_layout()
    if out:
        fig.savefig(out, dpi=200, bbox_inches="tight")
    return fig


# ---------------------------------------------------------------- self-test


def _synthetic_rows(epochs: int = 8, seeds=(0, 1, 2)) -> dict[str, list]:
    """A small sweep: baseline, removal at 2/4, window at 1/3; test_acc known in closed form.

    (A window with onset 0 would be a removal run when read back from bare
    metrics files, so the windows start later.)
    """
    cols: dict[str, list] = {k: [] for k in [
        "run_id", "model", "dataset", "seed", "epoch", "deficit", "deficit_start", "deficit_end",
        "deficit_windows", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_seconds",
        "images_per_sec", "fisher_trace", "config_hash", "sweep", "variant", "point"]}
    runs = [("baseline", -1, -1, -1), ("removal", 2, 0, 2), ("removal", 4, 0, 4),
            ("window", 1, 1, 3), ("window", 3, 3, 5)]
    for variant, point, start, end in runs:
        for seed in seeds:
            run_id = f"{variant}-{point}-s{seed}"
            for e in range(epochs):
                deficit = "blur" if start <= e < end else "none"
                cols["run_id"].append(run_id)
                cols["model"].append("allcnn")
                cols["dataset"].append("cifar10")
                cols["seed"].append(seed)
                cols["epoch"].append(e)
                cols["deficit"].append(deficit)
                cols["deficit_start"].append(start)
                cols["deficit_end"].append(end)
                cols["deficit_windows"].append("none" if start < 0 else f"blur:{start}-{end}")
                cols["lr"].append(0.05)
                cols["train_loss"].append(1.0 / (e + 1))
                cols["train_acc"].append(0.5)
                cols["test_loss"].append(1.0)
                cols["test_acc"].append(_synthetic_acc(variant, point, seed, e))
                cols["epoch_seconds"].append(1.5)
                cols["images_per_sec"].append(1000.0)
                cols["fisher_trace"].append(None if e % 2 else 10.0 / (e + 1))
                cols["config_hash"].append("0123456789abcdef")
                cols["sweep"].append("selftest")
                cols["variant"].append(variant)
                cols["point"].append(point)
    return cols


def _synthetic_acc(variant: str, point: int, seed: int, epoch: int) -> float:
    loss = {"baseline": 0.0, "removal": 0.01 * point, "window": 0.02 if point == 1 else 0.005}[variant]
    return 0.5 + 0.01 * epoch - loss + 0.001 * seed


def write_synthetic_sweep(folder: str) -> tuple[str, str]:
    """Write a synthetic sweep.parquet and a folder of its runs' metrics.parquet (Go's types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"seed": pa.int64(), "epoch": pa.int32(), "deficit_start": pa.int32(), "deficit_end": pa.int32(),
             "point": pa.int32(), "fisher_trace": pa.float64()}
    cols = _synthetic_rows()
    table = pa.table({k: pa.array(v, type=types.get(k)) for k, v in cols.items()})
    sweep = os.path.join(folder, "sweep.parquet")
    pq.write_table(table, sweep, compression="zstd")
    runs_dir = os.path.join(folder, "runs")
    metrics = table.drop_columns(["sweep", "variant", "point"])
    ids = metrics.column("run_id").to_pylist()
    for run_id in sorted(set(ids)):
        os.makedirs(os.path.join(runs_dir, run_id), exist_ok=True)
        mask = pa.array([i == run_id for i in ids])
        pq.write_table(metrics.filter(mask), os.path.join(runs_dir, run_id, "metrics.parquet"))
    return sweep, runs_dir


def selftest() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        sweep, runs_dir = write_synthetic_sweep(tmp)
        rows, runs = load_runs(sweep)
        tab = table(runs)
        print(format_table(tab, runs), end="")
        # Final = epoch 7: 0.57 - loss + 0.001 seed; over seeds 0,1,2: mean 0.571 - loss, std 0.001.
        # The seed term cancels in the pairs, so every paired difference is -loss exactly.
        want = {("baseline", -1): 0.0, ("removal", 2): 0.02, ("removal", 4): 0.04,
                ("window", 1): 0.02, ("window", 3): 0.005}
        got = {(r["variant"], r["point"]): r for r in tab.to_dict("records")}
        if set(got) != set(want):
            raise AnalyzeError(f"selftest: groups {sorted(got)}, want {sorted(want)}")
        for key, loss in want.items():
            r = got[key]
            checks = [("n", r["n"], 3), ("acc_mean", r["acc_mean"], 0.571 - loss), ("acc_std", r["acc_std"], 0.001),
                      ("lastk_mean", r["lastk_mean"], 0.551 - loss), ("diff_mean", r["diff_mean"], -loss),
                      ("diff_low", r["diff_low"], -loss), ("diff_n", r["diff_n"], 3), ("seeds", r["seeds"], "0,1,2")]
            for what, g, w in checks:
                ok = g == w if isinstance(w, (int, str)) else abs(g - w) < 1e-12
                if not ok:
                    raise AnalyzeError(f"selftest: {key} {what} = {g!r}, want {w!r}")
        # Window (3,5) ends at 5 < 8 epochs, so the last 5 epochs (3..7) include deficit epochs 3,4.
        if "deficit epochs 3,4" not in runs.set_index("run_id").loc["window-3-s0", "warning"]:
            raise AnalyzeError("selftest: no warning for a last-K window over deficit epochs")
        # A t-interval against scipy-free arithmetic: diffs 1, 2, 3 -> mean 2, sd 1, t(0.975, 2) = 4.302652729911275.
        n, mean, lo, hi = paired(np.array([1.0, 2.0, 3.0]))
        if n != 3 or abs(lo - (2 - 4.302652729911275 / math.sqrt(3))) > 1e-9 or not math.isnan(paired(np.array([1.0, 2.0]))[2]):
            raise AnalyzeError(f"selftest: paired interval {lo, hi}")
        if not (tost([0.1, -0.1, 0.05, 0.0], 1.0) < 0.05 < tost([0.9, 1.1, 1.0, 0.95], 1.0)):
            raise AnalyzeError("selftest: TOST")
        # A folder of bare metrics.parquet files: variants derived from the deficit columns.
        tab2 = analyze(runs_dir)
        cols = ["variant", "point", "n", "acc_mean", "diff_mean"]
        if not (tab[cols[:3]].equals(tab2[cols[:3]]) and np.allclose(tab[cols[3:]], tab2[cols[3:]], rtol=0, atol=1e-12)):
            raise AnalyzeError(f"selftest: metrics folder table differs:\n{tab2}")
        png = os.path.join(tmp, "plot.png")
        plot(tab, png)
        plot_curves(rows, tab, os.path.join(tmp, "curves.png"))
        if os.path.getsize(png) < 1000:
            raise AnalyzeError("selftest: plot is empty")
    print("selftest: ok (polars and pandas agree; sweep.parquet and metrics folder agree)")
    return 0


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="analyze.py",
        description="Print the critical-period table of a critlab sweep (final test accuracy = mean of the "
                    "last 5 epochs per run; mean ± std over seeds) and draw the critical-period curves.")
    p.add_argument("path", nargs="?", help="sweep.parquet, a sweep folder, or a folder of runs' metrics.parquet")
    p.add_argument("--out", metavar="PLOT.png", help="draw the curves to this PNG (needs matplotlib)")
    p.add_argument("--csv", metavar="TABLE.csv", help="write the table as CSV (accuracies as fractions)")
    p.add_argument("--margin", type=float, default=0, metavar="POINTS",
                   help="TOST equivalence test of each paired difference within ±POINTS accuracy points")
    p.add_argument("--selftest", action="store_true", help="check the script on a synthetic sweep and exit")
    args = p.parse_args(argv)
    if args.selftest:
        import matplotlib
        matplotlib.use("Agg")
        try:
            return selftest()
        except AnalyzeError as e:
            print(f"analyze: {e}", file=sys.stderr)
            return 1
    if not args.path:
        p.error("give a sweep.parquet or a folder (or --selftest)")
    try:
        rows, runs = load_runs(args.path)
    except (AnalyzeError, OSError) as e:
        print(f"analyze: {e}", file=sys.stderr)
        return 1
    tab = table(runs)
    sys.stdout.write(format_table(tab, runs))
    if args.margin:
        for r in tab.to_dict("records"):
            if r["diff_n"] and r["reference"] and r["variant"] != "trunk":
                diffs = [float(x) for x in r["diff_by_seed"].split()]
                p = tost(diffs, args.margin / 100)
                verdict = f"p = {p:.3f}" if not math.isnan(p) else f"not tested (n < {MIN_INTERVAL_N})"
                print(f"TOST |Δ| < {args.margin:.2f} points: {r['variant']} {r['point']}: {verdict}")
    if args.csv:
        tab.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if args.out:
        import matplotlib
        matplotlib.use("Agg")
        plot(tab, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
