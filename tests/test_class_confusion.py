"""Counting false picks that sit on another class's particle (known answers on tiny tables)."""
from __future__ import annotations

import pandas as pd

from particles import CZII_PARTICLES
from postprocess.class_confusion import cross_class_false_picks


def _table(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"experiment": run, "particle_type": name, "x": x, "y": 1000.0, "z": 500.0}
                         for run, name, x in rows])


def test_false_picks_on_another_class_are_counted_by_the_class_they_sit_on() -> None:
    truth = _table([("A", "ribosome", 1000.0), ("A", "apo-ferritin", 3000.0), ("A", "thyroglobulin", 5000.0),
                    ("B", "apo-ferritin", 1000.0)])
    picks = _table([("A", "ribosome", 1010.0),   # on its own particle
                    ("A", "ribosome", 3020.0),   # on an apo-ferritin (within 30 Å of it)
                    ("A", "ribosome", 5040.0),   # on a thyroglobulin (within 65 Å)
                    ("A", "ribosome", 5100.0),   # 100 Å from the thyroglobulin: off, and on nothing
                    ("B", "ribosome", 1000.0),   # run B: on B's apo-ferritin, not on A's ribosome
                    ("A", "apo-ferritin", 1000.0)])  # an apo-ferritin pick on the ribosome
    table = cross_class_false_picks(picks, truth, particles=CZII_PARTICLES)
    ribosome = table.loc["ribosome"]
    assert (ribosome["picks"], ribosome["off"], ribosome["on_other"]) == (5, 4, 3)
    assert (ribosome["mostly_on"], ribosome["mostly_on_count"]) == ("apo-ferritin", 2)
    apo = table.loc["apo-ferritin"]
    assert (apo["picks"], apo["off"], apo["on_other"], apo["mostly_on"]) == (1, 1, 1, "ribosome")
    assert table.loc["thyroglobulin", "picks"] == 0 and table.loc["thyroglobulin", "mostly_on"] == ""
