"""The Markdown tables of ``bench_pair_ensemble`` results: ``python -m benchmarks.pair_ensemble_table WORK``.

Reads ``WORK/results.jsonl`` (the last row of each family, level, recipe and post-processing) and prints the
key-figures table (ours beside the classical baseline, OOF CV cross-fitted and in-sample, the weight-2
classes), the false picks on other classes' particles per test run, and the OOF CV against the test score
with the spread of 4-run test scores.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

LEVEL_ORDER = {"easy": 0, "realistic": 1, "hard": 2}
WEIGHT_2 = ("beta-galactosidase", "thyroglobulin")


def latest_rows(path: Path) -> list[dict]:
    """The last row recorded for each (family, difficulty, label, postprocess), in table order."""
    rows: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["family"], row["difficulty"], row["label"], row["postprocess"])] = row
    return sorted(rows.values(), key=lambda r: (r["family"], LEVEL_ORDER.get(r["difficulty"], 9), r["label"],
                                                r["postprocess"]))


def number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def weight_2(row: dict, key: str) -> str:
    scores = row.get(key) or {}
    return " / ".join(number(scores.get(name), 2) for name in WEIGHT_2)


def key_figures(rows: list[dict]) -> str:
    lines = ["| family | level | post-processing | **test, 4 runs** | **test, 20 runs** | baseline, 4 / 20 runs | "
             "OOF CV (cross-fitted) | OOF CV in-sample | bgal / thyro, 20 runs: ours | baseline | train min | "
             "commit |", "|" + "---|" * 12]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['difficulty']} | {r['postprocess']} | **{number(r['test_small'])}** | "
            f"**{number(r.get('test_large'))}** | {number(r.get('baseline_small'))} / "
            f"{number(r.get('baseline_large'))} | {number(r['oof_cv'])} | {number(r.get('oof_cv_in_sample'))} | "
            f"{weight_2(r, 'test_large_per_class')} | {weight_2(r, 'baseline_large_per_class')} | "
            f"{number(r.get('train_minutes'), 1)} | {r['commit']} |")
    return "\n".join(lines)


def confusion(rows: list[dict]) -> str:
    lines = ["| family | level | post-processing | false picks per test run (scored classes) | of which on another "
             "class's particle | per class (20 runs, total) |", "|" + "---|" * 6]
    for r in rows:
        c = r.get("test_large_confusion") or r["test_small_confusion"]
        per_class = ", ".join(f"{name} {int(count)}" for name, count in c["on_other"].items() if count)
        lines.append(f"| {r['family']} | {r['difficulty']} | {r['postprocess']} | {c['false_per_run']:.1f} | "
                     f"{c['on_other_per_run']:.1f} | {per_class or '—'} |")
    return "\n".join(lines)


def oof_against_test(rows: list[dict]) -> str:
    """The OOF CV beside the 20-run test score and the spread of 4-run test scores (how far a 4-run test
    moves with the runs drawn)."""
    lines = ["| family | level | post-processing | OOF CV cross-fitted | in-sample | test, 20 runs | "
             "in-sample − test | 4-run test: mean ± sd (90 % range) |", "|" + "---|" * 8]
    for r in rows:
        test, in_sample, spread = r.get("test_large"), r.get("oof_cv_in_sample"), r.get("test_large_subsets")
        gap = f"{in_sample - test:+.3f}" if test is not None and in_sample is not None else "—"
        spread_text = (f"{spread['mean']:.3f} ± {spread['sd']:.3f} ({spread['low']:.3f}–{spread['high']:.3f})"
                       if spread else "—")
        lines.append(f"| {r['family']} | {r['difficulty']} | {r['postprocess']} | {number(r['oof_cv'])} | "
                     f"{number(in_sample)} | {number(test)} | {gap} | {spread_text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="the --work folder of bench_pair_ensemble")
    args = parser.parse_args(argv)
    rows = latest_rows(args.work / "results.jsonl")
    print(key_figures(rows))
    print()
    print(confusion(rows))
    print()
    print(oof_against_test(rows))


if __name__ == "__main__":
    main()
