#!/usr/bin/env python3
"""Check that a run reproduces: same per-epoch metrics in two Parquet logs.

    python tools/compare_metrics.py A.parquet B.parquet [RUN_ID]

A and B are metrics.parquet or sweep.parquet files; with RUN_ID, rows of
that run only are taken from a sweep.parquet (a metrics.parquet holds one
run). The epoch, deficit, lr, losses and accuracies must be equal exactly
(critlab runs are deterministic given their config); timing columns are
ignored. Exits 0 when identical, 1 with the first differences otherwise.
"""
import sys

import pyarrow.parquet as pq

COLUMNS = ["epoch", "deficit", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]


def rows(path: str, run: str | None):
    df = pq.read_table(path).to_pandas()
    if run is not None and "variant" in df.columns:
        df = df[df["run_id"] == run]
    return df[COLUMNS].sort_values("epoch").reset_index(drop=True)


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    run = argv[3] if len(argv) == 4 else None
    a, b = rows(argv[1], run), rows(argv[2], run)
    if len(a) == 0 or len(b) == 0:
        print(f"no rows: {len(a)} in {argv[1]}, {len(b)} in {argv[2]}", file=sys.stderr)
        return 1
    if a.equals(b):
        print(f"identical: {len(a)} epochs")
        return 0
    if len(a) != len(b):
        print(f"different: {len(a)} epochs in {argv[1]}, {len(b)} in {argv[2]}")
    else:
        print("different:\n" + a.compare(b).head(10).to_string())
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
