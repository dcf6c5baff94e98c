"""ERRORS.md's table holds every bad-input case with the message the user gets."""
from __future__ import annotations

from tests import test_bad_inputs_ensemble, test_bad_inputs_tools, test_bad_inputs_train, test_bad_inputs_trust
from tests.bad_input_harness import REPO

CASES = [*test_bad_inputs_train.CASES, *test_bad_inputs_ensemble.CASES, *test_bad_inputs_tools.CASES,
         *test_bad_inputs_trust.CASES]


def test_the_error_table_lists_every_case() -> None:
    """ERRORS.md (linked from the README) holds every case with the message the user gets."""
    assert "(ERRORS.md)" in (REPO / "README.md").read_text()
    doc = (REPO / "ERRORS.md").read_text()
    table = doc[doc.index("| Bad input or fault"):]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    missing = [message for _, message in CASES if not any(message in row for row in rows)]
    assert not missing, f"ERRORS.md's table lacks {missing}"
    assert len(rows) - 2 >= 25 and len(CASES) == 75
