"""ERRORS.md's table holds every bad-input case with the message the user gets."""
from __future__ import annotations

from tests import (test_bad_inputs_ensemble, test_bad_inputs_hostile, test_bad_inputs_tools, test_bad_inputs_train,
                   test_bad_inputs_trust)
from tests.bad_input_harness import REPO

CASES = [*test_bad_inputs_train.CASES, *test_bad_inputs_ensemble.CASES, *test_bad_inputs_tools.CASES,
         *test_bad_inputs_trust.CASES, *test_bad_inputs_hostile.CASES]


def test_the_error_table_lists_every_case() -> None:
    """ERRORS.md (linked from the README) holds every case with the message the user gets."""
    assert "(ERRORS.md)" in (REPO / "README.md").read_text()
    doc = (REPO / "ERRORS.md").read_text()
    table = doc[doc.index("| Bad input or fault"):]
    rows = [line for line in table.splitlines() if line.startswith("|") and not line.startswith("|---")]
    missing = [(case.__name__, message) for case, message in CASES if not any(message in row for row in rows)]
    assert not missing, f"ERRORS.md's tables lack {missing}"
