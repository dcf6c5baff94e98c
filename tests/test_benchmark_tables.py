"""The benchmark tables are made from the recorded results, the latest row of each setting."""
from __future__ import annotations

import json

from benchmarks.pair_ensemble_table import latest_rows, main


def row(level: str, setting: str, test20: float, on_other: float) -> dict:
    classes = {"beta-galactosidase": 0.5, "thyroglobulin": 0.75}
    return {"family": "fourier", "difficulty": level, "label": "cpu", "postprocess": setting, "test_small": 0.8,
            "test_large": test20, "baseline_small": 0.6, "baseline_large": 0.65, "oof_cv": 0.81,
            "oof_cv_in_sample": 0.85, "test_large_per_class": classes, "baseline_large_per_class": classes,
            "train_minutes": None, "commit": "abc1234",
            "test_small_confusion": {"false_per_run": 3.0, "on_other_per_run": 1.0, "on_other": {}},
            "test_large_confusion": {"false_per_run": 4.0, "on_other_per_run": on_other,
                                     "on_other": {"ribosome": 7.0, "apo-ferritin": 0.0}},
            "test_large_subsets": {"size": 4, "mean": test20, "sd": 0.031, "low": test20 - 0.05,
                                   "high": test20 + 0.04}}


def test_the_latest_row_of_each_setting_is_tabled_in_level_order(tmp_path, capsys) -> None:
    rows = [row("hard", "as-trained", 0.70, 2.0), row("realistic", "as-trained", 0.90, 1.5),
            row("hard", "as-trained", 0.72, 2.5)]  # a re-run of hard replaces the first
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert [(r["difficulty"], r["test_large"]) for r in latest_rows(tmp_path / "results.jsonl")] == [
        ("realistic", 0.90), ("hard", 0.72)]
    main([str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| fourier | hard | as-trained | **0.800** | **0.720** | 0.600 / 0.650 | 0.810 | 0.850 | 0.50 / 0.75 |" in printed
    assert "| fourier | hard | as-trained | 4.0 | 2.5 | ribosome 7 |" in printed
    assert ("| fourier | hard | as-trained | 0.810 | 0.850 | 0.720 | +0.130 | 0.720 ± 0.031 (0.670–0.760) |"
            in printed)
    assert "0.700" not in printed
