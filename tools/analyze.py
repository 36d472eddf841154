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

Per run, the final test accuracy is the mean ``test_acc`` of its last 5
epochs (fewer if it has fewer). Per (sweep, model, dataset, variant,
point) the table gives the number of runs (seeds), the mean and the
sample standard deviation (ddof 1) of the final accuracy over them, and
the change of the mean from its reference, as ``critlab report`` computes
it: removal points and their controls (``control-vflip``,
``control-lr-restart``) against removal point 0, which has as many sharp
epochs after the deficit; ``finetune`` and ``scratch`` against
``scratch``; everything else against the ``baseline`` runs; removal point
0 and the baseline stand in for each other when one is missing.

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

LAST_EPOCHS = 5
GROUP = ["sweep", "model", "dataset", "variant", "point"]
RUN = ["sweep", "run_id"]
BASE = ["sweep", "model", "dataset"]
TABLE_COLUMNS = GROUP + ["n", "seeds", "acc_mean", "acc_std", "baseline", "delta"]
REMOVAL_FAMILY = ["removal", "control-vflip", "control-lr-restart"]
FINETUNE_FAMILY = ["finetune", "scratch"]
REQUIRED = ["run_id", "model", "dataset", "seed", "epoch", "deficit_start", "deficit_end",
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


def table_polars(df: pl.DataFrame, last: int = LAST_EPOCHS) -> pl.DataFrame:
    runs = (df.unique(subset=RUN + ["epoch"], keep="last", maintain_order=True)
              .sort(RUN + ["epoch"])
              .group_by(RUN, maintain_order=True).tail(last)
              .group_by(RUN + ["model", "dataset", "variant", "point", "seed", "deficit_windows"], maintain_order=True)
              .agg(pl.col("test_acc").mean().alias("final_acc")))
    def ref(cond: pl.Expr, name: str) -> pl.DataFrame:
        return runs.filter(cond).group_by(BASE).agg(pl.col("final_acc").mean().alias(name))
    variant = pl.col("variant")
    tab = (runs.group_by(GROUP)
               .agg(pl.len().cast(pl.Int64).alias("n"),
                    pl.col("seed").sort().cast(pl.String).str.join(",").alias("seeds"),
                    pl.col("final_acc").mean().alias("acc_mean"),
                    pl.col("final_acc").std(ddof=1).alias("acc_std"))
               .join(ref(variant == "baseline", "_base"), on=BASE, how="left")
               .join(ref((variant == "removal") & (pl.col("point") == 0), "_rem0"), on=BASE, how="left")
               .join(ref(variant == "scratch", "_scratch"), on=BASE, how="left")
               .with_columns(pl.when(variant.is_in(REMOVAL_FAMILY)).then(pl.coalesce("_rem0", "_base"))
                               .when(variant.is_in(FINETUNE_FAMILY)).then(pl.col("_scratch"))
                               .otherwise(pl.coalesce("_base", "_rem0")).alias("baseline"))
               .with_columns((pl.col("acc_mean") - pl.col("baseline")).alias("delta"))
               .sort(GROUP))
    return tab.select(TABLE_COLUMNS).with_columns(pl.col(["acc_std", "baseline", "delta"]).fill_null(float("nan")))


def table_pandas(df: pd.DataFrame, last: int = LAST_EPOCHS) -> pd.DataFrame:
    df = df.drop_duplicates(subset=RUN + ["epoch"], keep="last").sort_values(RUN + ["epoch"], kind="stable")
    tail = df.groupby(RUN, sort=False).tail(last)
    runs = (tail.groupby(RUN + ["model", "dataset", "variant", "point", "seed", "deficit_windows"], sort=False)["test_acc"]
                .mean().rename("final_acc").reset_index())
    def ref(mask: pd.Series, name: str) -> pd.DataFrame:
        return runs[mask].groupby(BASE)["final_acc"].mean().rename(name).reset_index()
    g = runs.groupby(GROUP)
    tab = pd.DataFrame({
        "n": g.size().astype("int64"),
        "seeds": g["seed"].agg(lambda s: ",".join(str(v) for v in sorted(s))),
        "acc_mean": g["final_acc"].mean(),
        "acc_std": g["final_acc"].std(ddof=1),
    }).reset_index()
    for mask, name in [(runs["variant"] == "baseline", "_base"),
                       ((runs["variant"] == "removal") & (runs["point"] == 0), "_rem0"),
                       (runs["variant"] == "scratch", "_scratch")]:
        tab = tab.merge(ref(mask, name), on=BASE, how="left")
    removal, finetune = tab["variant"].isin(REMOVAL_FAMILY), tab["variant"].isin(FINETUNE_FAMILY)
    tab["baseline"] = np.where(removal, tab["_rem0"].fillna(tab["_base"]),
                               np.where(finetune, tab["_scratch"], tab["_base"].fillna(tab["_rem0"])))
    tab["delta"] = tab["acc_mean"] - tab["baseline"]
    return tab.sort_values(GROUP, kind="stable").reset_index(drop=True)[TABLE_COLUMNS]


def cross_check(tp: pl.DataFrame, td: pd.DataFrame, tol: float = 1e-12) -> None:
    """Raise AnalyzeError unless the polars and pandas tables agree."""
    a = tp.to_pandas()
    if len(a) != len(td):
        raise AnalyzeError(f"polars table has {len(a)} rows, pandas {len(td)}")
    for c in GROUP + ["n", "seeds"]:
        if list(a[c].astype(str)) != list(td[c].astype(str)):
            raise AnalyzeError(f"polars and pandas disagree on column {c}")
    for c in ["acc_mean", "acc_std", "baseline", "delta"]:
        x, y = a[c].to_numpy(dtype=float), td[c].to_numpy(dtype=float)
        bad = ~((np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= tol))
        if bad.any():
            i = int(np.argmax(bad))
            raise AnalyzeError(f"polars and pandas disagree on {c} in row {i}: {x[i]!r} vs {y[i]!r}")


def analyze(path: str) -> pl.DataFrame:
    """Load path with both libraries, build and cross-check the table."""
    files = find_parquet(path)
    name = os.path.basename(os.path.normpath(path if os.path.isdir(path) else os.path.dirname(path) or "."))
    tp = table_polars(load_polars(files, name))
    cross_check(tp, table_pandas(load_pandas(files, name)))
    return tp


def _pct(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{100 * v:.2f}"


def format_table(tab: pl.DataFrame) -> str:
    """The table as aligned text, accuracies in percent."""
    head = ["sweep", "model", "dataset", "variant", "point", "n", "final acc %", "change %"]
    rows = []
    for r in tab.iter_rows(named=True):
        acc = f"{_pct(r['acc_mean'])} ± {_pct(r['acc_std'])}"
        delta = "-" if math.isnan(r["delta"]) else f"{100 * r['delta']:+.2f}"
        rows.append([r["sweep"], r["model"], r["dataset"], r["variant"], str(r["point"]), str(r["n"]), acc, delta])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    right = {4, 5, 6, 7}
    out = []
    for row in [head] + rows:
        out.append("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- plot


def plot(tab: pl.DataFrame, out: str) -> bool:
    """Draw the critical-period curves to out; False if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (sweep, model, dataset), part in tab.group_by(BASE, maintain_order=True):
        tag = " ".join(s for s in (sweep, model, dataset) if s)
        base = part["baseline"][0]
        if base is not None and not math.isnan(base):
            ax1.axhline(100 * base, color="gray", ls="--", lw=1)
            b = part.filter(pl.col("variant") == "baseline")
            if b.height and not math.isnan(b["acc_std"][0]):
                s = b["acc_std"][0]
                ax1.axhspan(100 * (base - s), 100 * (base + s), color="gray", alpha=0.15)
        for (variant,), v in part.group_by(["variant"], maintain_order=True):
            if variant == "baseline":
                continue
            v = v.sort("point")
            x = v["point"].to_numpy()
            std = np.nan_to_num(v["acc_std"].to_numpy(), nan=0.0)
            if variant == "window":
                ax2.errorbar(x, 100 * v["delta"].to_numpy(), yerr=100 * std, marker="o", capsize=3, label=tag)
            else:
                ax1.errorbar(x, 100 * v["acc_mean"].to_numpy(), yerr=100 * std, marker="o", capsize=3,
                             label=f"{variant} {tag}".strip())
    ax1.set_xlabel("deficit removal epoch (point)")
    ax1.set_ylabel("final test accuracy (%)")
    ax1.set_title("Final accuracy vs removal epoch (dashed: no deficit)")
    ax2.axhline(0, color="gray", lw=1)
    ax2.set_xlabel("window onset (epoch)")
    ax2.set_ylabel("accuracy change vs no deficit (points)")
    ax2.set_title("Sensitivity to a deficit window")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


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
        tab = analyze(sweep)
        print(format_table(tab), end="")
        # Expected: final = mean over epochs 3..7 of 0.5 + 0.01 e - loss + 0.001 seed
        #         = 0.55 - loss + 0.001 seed; over seeds 0,1,2: mean 0.551 - loss, std 0.001.
        want = {("baseline", -1): 0.0, ("removal", 2): 0.02, ("removal", 4): 0.04,
                ("window", 1): 0.02, ("window", 3): 0.005}
        got = {(r["variant"], r["point"]): r for r in tab.iter_rows(named=True)}
        if set(got) != set(want):
            raise AnalyzeError(f"selftest: groups {sorted(got)}, want {sorted(want)}")
        for key, loss in want.items():
            r = got[key]
            checks = [("n", r["n"], 3), ("acc_mean", r["acc_mean"], 0.551 - loss),
                      ("acc_std", r["acc_std"], 0.001), ("delta", r["delta"], -loss), ("seeds", r["seeds"], "0,1,2")]
            for what, g, w in checks:
                ok = g == w if isinstance(w, (int, str)) else abs(g - w) < 1e-12
                if not ok:
                    raise AnalyzeError(f"selftest: {key} {what} = {g!r}, want {w!r}")
        # A folder of bare metrics.parquet files: variants derived from the deficit columns.
        tab2 = analyze(runs_dir)
        cols = ["variant", "point", "n", "acc_mean", "acc_std", "delta"]
        a, b = tab.select(cols).to_pandas(), tab2.select(cols).to_pandas()
        if not (a[cols[:3]].equals(b[cols[:3]]) and np.allclose(a[cols[3:]], b[cols[3:]], rtol=0, atol=1e-12)):
            raise AnalyzeError(f"selftest: metrics folder table differs:\n{b}")
        csv = os.path.join(tmp, "table.csv")
        tab.write_csv(csv)
        if pd.read_csv(csv).shape != (5, len(TABLE_COLUMNS)):
            raise AnalyzeError("selftest: CSV has the wrong shape")
        png = os.path.join(tmp, "plot.png")
        if plot(tab, png):
            if os.path.getsize(png) < 1000:
                raise AnalyzeError("selftest: plot is empty")
            print("selftest: plot drawn")
        else:
            print("selftest: matplotlib not installed, plot not checked")
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
    p.add_argument("--selftest", action="store_true", help="check the script on a synthetic sweep and exit")
    args = p.parse_args(argv)
    if args.selftest:
        try:
            return selftest()
        except AnalyzeError as e:
            print(f"analyze: {e}", file=sys.stderr)
            return 1
    if not args.path:
        p.error("give a sweep.parquet or a folder (or --selftest)")
    try:
        tab = analyze(args.path)
    except (AnalyzeError, OSError) as e:
        print(f"analyze: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(format_table(tab))
    if args.csv:
        tab.write_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.out:
        if plot(tab, args.out):
            print(f"wrote {args.out}")
        else:
            print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
