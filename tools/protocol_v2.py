#!/usr/bin/env python3
"""Protocol v2's pre-registered analysis (docs/results.md, "Protocol v2").

    python tools/protocol_v2.py REMOVAL_SWEEP WINDOW_SWEEP [--csv FILE] [--points 8,16] [--onsets 0,8,16]
    python tools/protocol_v2.py --selftest

REMOVAL_SWEEP is a sweep of configs/cifar-cpu-v2-removal.yaml (removal with
an lr restart; blur, sham, vflip, noise at every point), WINDOW_SWEEP one of
configs/cifar-cpu-v2-window.yaml (blur and vflip windows, a sharp baseline).
Each comparison is a paired difference of last-epoch test accuracy within
seed, in points: n, mean, 95% t-interval, two-sided t-test p, and the TOST
p for equivalence within ±MARGIN. The four primary tests get Holm's
correction, and the decision rules give the verdict.

The removal points and window onsets are the pre-registered ones (T = 8, 16;
S = 0, 8, 16; the latest point and the earliest and latest onsets are the
primary ones); --points and --onsets name others, for the tiny sweeps of the
test suite. Every pre-registered arm must be there, and only the seeds that
have every arm of both families enter any comparison ("the seeds complete in
both families"); n < 5 withholds verdicts 1 and 2.

Each sweep is read from its sweep.parquet, which holds finished runs only;
per-run final accuracies come from analyze.py (last evaluated epoch,
computed with polars and pandas and cross-checked), and every run of an arm
must end at the same evaluated epoch.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analyze  # noqa: E402

MARGIN = 1.0  # points: the smallest effect called an effect, and the equivalence bound
ALPHA = 0.05
MIN_VERDICT_N = 5  # pre-registered: no verdict 1 or 2 below this many seeds
POINTS = (8, 16)  # pre-registered removal points (T = 0 is the anchor)
ONSETS = (0, 8, 16)  # pre-registered window onsets
REMOVAL_ARMS = ("removal", "control-sham", "control-vflip", "control-noise")
WINDOW_ARMS = ("window", "window-control-vflip")

COLUMNS = ["name", "family", "primary", "n", "mean", "ci_low", "ci_high", "p", "holm_p", "tost_p", "by_seed"]


def finals(runs: pd.DataFrame) -> dict[tuple[str, int], pd.Series]:
    """(variant, point) -> final accuracy in points, indexed by seed."""
    dup = runs[runs.duplicated(["variant", "point", "seed"], keep=False)]
    if len(dup):
        raise analyze.AnalyzeError(f"two runs of one arm and seed: {dup[['variant', 'point', 'seed']].to_dict('records')}")
    return {k: 100 * g.set_index("seed")["final_acc"] for k, g in runs.groupby(["variant", "point"])}


def load(path: str) -> pd.DataFrame:
    """A sweep's per-run table, from its sweep.parquet (finished runs only), each run checked to end, like
    the other runs of its arm, at an evaluated epoch."""
    f = os.path.join(path, "sweep.parquet") if os.path.isdir(path) else path
    if os.path.basename(f) != "sweep.parquet" or not os.path.isfile(f):
        raise analyze.AnalyzeError(f"{path}: no sweep.parquet (it holds the finished runs; the sweep writes it "
                                   f"when it ends or stops: run it to the end, or `critlab sweep collect {path}`)")
    rows, runs = analyze.load_runs(f)
    last = rows.to_pandas().groupby("run_id").agg(last=("epoch", "max"))
    evaluated = rows.to_pandas().dropna(subset=["test_acc"]).groupby("run_id").agg(ev=("epoch", "max"))
    runs = runs.join(last, on="run_id").join(evaluated, on="run_id")
    bad = runs[runs["last"] != runs["ev"]]
    if len(bad):
        raise analyze.AnalyzeError(f"{path}: runs whose last epoch has no test accuracy: {sorted(bad['run_id'])}")
    for (v, p), g in runs.groupby(["variant", "point"]):
        if g["last"].nunique() > 1:
            raise analyze.AnalyzeError(f"{path}: the runs of {v} at {p} end at different epochs: "
                                       f"{dict(zip(g['run_id'], g['last']))}")
    return runs


def compare(name: str, family: str, a: pd.Series, b: pd.Series, c: pd.Series | None = None,
            d: pd.Series | None = None, primary: bool = False) -> dict:
    """The paired difference (a - b), or (a - b) - (c - d), over the seeds all have."""
    from scipy import stats
    parts = [s for s in (a, b, c, d) if s is not None]
    seeds = sorted(set.intersection(*(set(s.index) for s in parts)))
    x = np.array([a[s] - b[s] - (c[s] - d[s] if c is not None else 0.0) for s in seeds], dtype=float)
    n = len(x)
    row = dict(name=name, family=family, primary=primary, n=n, mean=float(x.mean()) if n else math.nan,
               ci_low=math.nan, ci_high=math.nan, p=math.nan, holm_p=math.nan, tost_p=math.nan,
               by_seed=" ".join(f"{s}:{v:+.2f}" for s, v in zip(seeds, x)))
    if n >= 2:
        sd = float(x.std(ddof=1))
        se = sd / math.sqrt(n)
        h = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * se
        row.update(ci_low=row["mean"] - h, ci_high=row["mean"] + h)
        row["p"] = float(stats.ttest_1samp(x, 0.0).pvalue) if sd > 0 else (1.0 if row["mean"] == 0 else 0.0)
        row["tost_p"] = analyze.tost(x, MARGIN) if n >= analyze.MIN_INTERVAL_N else math.nan
    return row


def holm(ps: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    out, running = [math.nan] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def comparisons(removal: pd.DataFrame, window: pd.DataFrame, points=POINTS, onsets=ONSETS) -> pd.DataFrame:
    """Every pre-registered comparison over the seeds complete in both families, the primary ones
    Holm-corrected."""
    r, w = finals(removal), finals(window)
    points, onsets = sorted(points), sorted(onsets)
    arms = [(r, ("removal", 0))] + [(r, (v, t)) for t in points for v in REMOVAL_ARMS]
    arms += [(w, ("baseline", -1))] + [(w, (v, s)) for s in onsets for v in WINDOW_ARMS]
    missing = [f"{v}@{p}" for d, (v, p) in arms if (v, p) not in d]
    if missing:
        raise analyze.AnalyzeError(f"no finished run of the pre-registered arms {', '.join(missing)}")
    every = sorted(set.union(*(set(d[k].index) for d, k in arms)))
    complete = sorted(set.intersection(*(set(d[k].index) for d, k in arms)))
    r = {k: v[v.index.isin(complete)] for k, v in r.items()}
    w = {k: v[v.index.isin(complete)] for k, v in w.items()}
    T, S0, S1 = points[-1], onsets[0], onsets[-1]
    rows = []
    for t in points:
        sham = r[("control-sham", t)]
        rows.append(compare(f"Δblur({t})", "B", r[("removal", t)], sham, primary=t == T))
        for v, k in (("control-vflip", "vflip"), ("control-noise", "noise")):
            if (v, t) in r:
                rows.append(compare(f"Δ{k}({t})", "B", r[(v, t)], sham))
        if ("control-vflip", t) in r:
            rows.append(compare(f"Δbv({t})", "B", r[("removal", t)], r[("control-vflip", t)], primary=t == T))
        if ("removal", 0) in r:
            rows.append(compare(f"sham({t}) − T0", "B", sham, r[("removal", 0)]))
    base = w[("baseline", -1)]
    for s in onsets:
        rows.append(compare(f"W_blur({s})", "A", w[("window", s)], base))
        if ("window-control-vflip", s) in w:
            rows.append(compare(f"W_vflip({s})", "A", w[("window-control-vflip", s)], base))
            rows.append(compare(f"C({s})", "A", w[("window", s)], w[("window-control-vflip", s)], primary=s == S0))
    if S1 != S0:
        rows.append(compare(f"W_blur({S0}) − W_blur({S1})", "A", w[("window", S0)], w[("window", S1)], primary=True))
    tab = pd.DataFrame(rows, columns=COLUMNS)
    prim = tab.index[tab["primary"]]
    if len(prim):
        tab.loc[prim, "holm_p"] = holm(tab.loc[prim, "p"].tolist())
    tab.attrs.update(T=T, T_first=points[0], S0=S0, S1=S1, n=len(complete), seeds=complete,
                     incomplete=[s for s in every if s not in complete])
    return tab


def verdict(tab: pd.DataFrame) -> tuple[int, list[str]]:
    """The decision rule that holds first (1-4; 1 and 2 withheld below MIN_VERDICT_N seeds) and why,
    line by line."""
    T, T0, S0, S1 = (tab.attrs[k] for k in ("T", "T_first", "S0", "S1"))
    row = {r["name"]: r for _, r in tab.iterrows()}

    def get(name):
        if name not in row:
            raise analyze.AnalyzeError(f"comparison {name} is missing: the sweeps lack an arm of the protocol")
        return row[name]

    def sig(name):
        return get(name)["holm_p"] < ALPHA

    def equiv(name):
        return get(name)["tost_p"] < ALPHA

    p1, p2, p3, p4 = f"Δblur({T})", f"Δbv({T})", f"C({S0})", f"W_blur({S0}) − W_blur({S1})"
    removal_form = sig(p1) and get(p1)["mean"] <= -MARGIN and sig(p2) and get(p2)["mean"] < 0
    window_form = sig(p3) and get(p3)["mean"] <= -MARGIN and sig(p4) and get(p4)["mean"] < 0
    rule1 = removal_form or window_form
    rule2 = not rule1 and all(equiv(x) for x in (f"Δblur({T0})", p1, p3))
    costs = [x for x in (p1, f"Δvflip({T})", f"W_blur({S0})", f"W_vflip({S0})") if get(x)["ci_high"] < 0]
    rule3 = not rule1 and bool(costs) and equiv(p2) and equiv(p3)
    n = tab.attrs["n"]
    why = [f"n = {n} seeds complete in both families ({' '.join(map(str, tab.attrs['seeds']))})"
           + (f"; left out, incomplete: {' '.join(map(str, tab.attrs['incomplete']))}" if tab.attrs["incomplete"] else ""),
           f"rule 1, removal form: {p1} Holm p {get(p1)['holm_p']:.3g}, mean {get(p1)['mean']:+.2f}; "
           f"{p2} Holm p {get(p2)['holm_p']:.3g}, mean {get(p2)['mean']:+.2f}: {'holds' if removal_form else 'does not hold'}",
           f"rule 1, window form: {p3} Holm p {get(p3)['holm_p']:.3g}, mean {get(p3)['mean']:+.2f}; "
           f"{p4} Holm p {get(p4)['holm_p']:.3g}, mean {get(p4)['mean']:+.2f}: {'holds' if window_form else 'does not hold'}",
           f"rule 2: TOST p (±{MARGIN:g}) of Δblur({T0}) {get(f'Δblur({T0})')['tost_p']:.3g}, {p1} {get(p1)['tost_p']:.3g}, "
           f"{p3} {get(p3)['tost_p']:.3g}: {'holds' if rule2 else 'does not hold'}",
           f"rule 3: costs below 0 in {', '.join(costs) or 'none'}; TOST p of {p2} {get(p2)['tost_p']:.3g}, "
           f"{p3} {get(p3)['tost_p']:.3g}: {'holds' if rule3 else 'does not hold'}"]
    if n < MIN_VERDICT_N:
        why.append(f"n < {MIN_VERDICT_N}: verdicts 1 and 2 are not given (pre-registered)"
                   + (f"; rule {1 if rule1 else 2} would hold" if rule1 or rule2 else ""))
        return (3 if rule3 else 4), why
    if rule1:
        return 1, why
    if rule2:
        if rule3:
            why.append("rules 2 and 3 both hold: the first in order is the verdict")
        return 2, why
    return (3 if rule3 else 4), why


VERDICTS = {
    1: "blur-specific critical period shown at CPU scale",
    2: "refuted as a learning-rate artifact",
    3: "non-specific early sensitivity",
    4: "inconclusive",
}


def format_table(tab: pd.DataFrame) -> str:
    lines = ["| comparison | n | mean | 95% CI | p | Holm p | TOST p (±1) | by seed |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |"]

    def f(x, fmt):
        return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)
    for _, r in tab.iterrows():
        name = f"**{r['name']}**" if r["primary"] else r["name"]
        ci = "–" if math.isnan(r["ci_low"]) else f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"
        lines.append(f"| {name} | {r['n']} | {r['mean']:+.2f} | {ci} | {f(r['p'], '.3g')} | {f(r['holm_p'], '.3g')} "
                     f"| {f(r['tost_p'], '.3g')} | {r['by_seed']} |")
    return "\n".join(lines)


def report(removal_path: str, window_path: str, points=POINTS, onsets=ONSETS) -> tuple[pd.DataFrame, int, list[str]]:
    tab = comparisons(load(removal_path), load(window_path), points, onsets)
    v, why = verdict(tab)
    return tab, v, why


def _runs(spec: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    """A per-run table as analyze.load_runs gives it, from accuracies in points per seed."""
    rows = []
    for (variant, point), accs in spec.items():
        for seed, acc in enumerate(accs):
            rows.append(dict(variant=variant, point=point, seed=seed, final_acc=acc / 100))
    return pd.DataFrame(rows)


def _scenario(blur_cost: float, vflip_cost: float, noise_sd: float, seeds: int = 6, rng_seed: int = 0):
    """Removal and window run tables where blur costs blur_cost points at the latest point and earliest
    onset (half at the first point, nothing at the latest onset) and vflip vflip_cost, with per-run
    noise of noise_sd points around a per-seed level."""
    rng = np.random.default_rng(rng_seed)
    level = 60 + rng.normal(0, 1, seeds)

    def arm(cost):
        return list(level + cost + rng.normal(0, noise_sd, seeds))
    removal = {("removal", 0): arm(0)}
    for t, f in ((8, 0.5), (16, 1.0)):
        removal.update({("removal", t): arm(-f * blur_cost), ("control-sham", t): arm(0),
                        ("control-vflip", t): arm(-f * vflip_cost), ("control-noise", t): arm(-f * vflip_cost)})
    window = {("baseline", -1): arm(0)}
    for s, f in ((0, 1.0), (8, 0.5), (16, 0.0)):
        window.update({("window", s): arm(-f * blur_cost), ("window-control-vflip", s): arm(-f * vflip_cost)})
    return _runs(removal), _runs(window)


def selftest() -> int:
    cases = [  # (blur cost, vflip cost, noise sd, seeds) -> verdict
        ((4.0, 0.0, 0.3, 6), 1),
        ((0.0, 0.0, 0.2, 6), 2),
        ((3.0, 3.0, 0.2, 6), 3),
        ((1.0, 0.0, 3.0, 6), 4),
        ((0.0, 0.0, 0.2, 4), 4),  # rule 2 would hold: withheld below 5 seeds
        ((4.0, 0.0, 0.3, 4), 4),  # rule 1 would hold: withheld below 5 seeds
        ((3.0, 3.0, 0.2, 4), 3),
    ]
    for (blur, vflip, sd, seeds), want in cases:
        tab = comparisons(*_scenario(blur, vflip, sd, seeds))
        got, why = verdict(tab)
        if got != want:
            print(f"selftest: blur {blur} vflip {vflip} sd {sd} n {seeds}: verdict {got}, want {want}\n" + "\n".join(why))
            return 1
    # Holm: the smallest p times m, then monotone.
    if holm([0.01, 0.04, 0.03, 0.2]) != [0.04, 0.09, 0.09, 0.2]:
        print(f"selftest: holm {holm([0.01, 0.04, 0.03, 0.2])}")
        return 1
    # A difference of differences pairs within seed.
    a, b = pd.Series([3.0, 5.0, 4.0]), pd.Series([1.0, 2.0, 2.0])
    r = compare("x", "A", a, b)
    if r["n"] != 3 or abs(r["mean"] - 7 / 3) > 1e-12 or r["by_seed"] != "0:+2.00 1:+3.00 2:+2.00":
        print(f"selftest: compare {r}")
        return 1
    # A seed missing from one arm of either family leaves every comparison.
    removal, window = _scenario(4.0, 0.0, 0.3, 6)
    window = window[~((window["variant"] == "window-control-vflip") & (window["point"] == 8) & (window["seed"] == 5))]
    tab = comparisons(removal, window)
    if tab.attrs["n"] != 5 or tab.attrs["incomplete"] != [5] or set(tab["n"]) != {5}:
        print(f"selftest: incomplete seed: n {tab.attrs['n']}, incomplete {tab.attrs['incomplete']}, ns {set(tab['n'])}")
        return 1
    # A missing arm is an error, not a comparison quietly dropped.
    try:
        comparisons(removal[removal["variant"] != "control-noise"], window)
        print("selftest: no error for a missing arm")
        return 1
    except analyze.AnalyzeError:
        pass
    print("selftest ok")
    return 0


def _epochs(text: str) -> list[int]:
    """A comma-separated list of distinct epochs >= 0 (argparse type)."""
    try:
        xs = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want epochs like 8,16")
    if any(x < 0 for x in xs) or len(set(xs)) != len(xs):
        raise argparse.ArgumentTypeError(f"{text!r}: want distinct epochs >= 0")
    return xs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("removal", nargs="?", help="sweep directory or sweep.parquet of cifar-cpu-v2-removal")
    ap.add_argument("window", nargs="?", help="sweep directory or sweep.parquet of cifar-cpu-v2-window")
    ap.add_argument("--csv", help="write the comparisons to this CSV file")
    ap.add_argument("--points", type=_epochs, default=list(POINTS),
                    help="removal points T > 0, the latest primary (default: the pre-registered %(default)s)")
    ap.add_argument("--onsets", type=_epochs, default=list(ONSETS),
                    help="window onsets, the earliest and latest primary (default: the pre-registered %(default)s)")
    ap.add_argument("--selftest", action="store_true", help="check the rules on synthetic sweeps")
    args = ap.parse_args(argv)
    if args.selftest:
        return selftest()
    if not args.removal or not args.window:
        ap.error("give the removal and the window sweep (or --selftest)")
    try:
        tab, v, why = report(args.removal, args.window, args.points, args.onsets)
    except analyze.AnalyzeError as e:
        print(f"protocol_v2: {e}", file=sys.stderr)
        return 1
    print(format_table(tab))
    print()
    print(f"verdict: {v} — {VERDICTS[v]}")
    for line in why:
        print(f"  {line}")
    if args.csv:
        tab.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
