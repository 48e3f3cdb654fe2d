"""SML (SIGIR'20) Table 1 on returning users only: sml/table1 with every tested period's
rows restricted to users that appear in some earlier training period
(`periods.returning_users`, data option test_users="returning").

Why: on the ML-100K stand-in 18,481 of the 25,005 test rows (74 %) come from users that no
earlier period has seen; an MF row cannot embed them (their embeddings stay at their
initialisation), which dilutes every MF row alike and may flatter the sequence rows. Yelp's
and Adressa's users return. The kept rows are exactly the "all" variant's rows of seen
users, with the same sampled negatives: 6,524 rows on ML-100K (1,548 / 1,367 / 517 / 922 /
2,170 per tested period), 79,678 on ML-1M-u2999. Everything else (rows, training, paper
numbers, claims) is sml/table1's; the trials are separate (the data options key them).

Command (stand-in scale):  ltbench run sml/table1-returning --data-dir DIR
Other stand-in:            ltbench run sml/table1-returning --dataset ml-1m-u2999-periods --data-dir DIR
Expected wall time: as sml/table1 (training is identical; evaluation ranks fewer rows).
Run locally:               ltbench run sml/table1-returning --quick   (synthetic stream, ~1 min)
"""

from __future__ import annotations

import dataclasses

from reproductions.sml import table1

DATA_OPTIONS = {"test_users": "returning"}
NOTE = ("Test users: RETURNING only. Each tested period's rows are restricted to users with "
        "a training interaction in an earlier period (74 % of ML-100K's rows come from users "
        "no earlier period has seen; they are dropped here). sml/table1 keeps every row.")


def get_spec():
  base = table1.get_spec()
  spec = dataclasses.replace(
      base, id="sml/table1-returning",
      title=base.title + " (returning test users only)", data_options=dict(DATA_OPTIONS),
      notes=(NOTE,) + base.notes)
  return dataclasses.replace(spec, quick=lambda: dataclasses.replace(
      table1.quick_spec(spec), data_options=dict(DATA_OPTIONS)))
