"""Table specs, one module per paper table; each module defines `get_spec()`."""

from __future__ import annotations

import importlib

from ltbench.errors import SpecError

# spec id -> module defining get_spec()
SPECS: dict[str, str] = {
    "cdn/table2": "reproductions.cdn.table2",
    "cdn/table3": "reproductions.cdn.table3",
    "cdn/table4": "reproductions.cdn.table4",
    "cdn/table5": "reproductions.cdn.table5",
    "cdn/figure1": "reproductions.cdn.figure1",
    "cdn/figure3": "reproductions.cdn.figure3",
    "cdn/figure4": "reproductions.cdn.figure4",
    "idw/table1": "reproductions.idw.table1",
    "idw/table4": "reproductions.idw.table4",
    "idw/figure3": "reproductions.idw.figure3",
    "idw/figure4": "reproductions.idw.figure4",
    "idw/figure6": "reproductions.idw.figure6",
    "idw/figure7": "reproductions.idw.figure7",
    "idw/figure8": "reproductions.idw.figure8",
    "ssl/rq1": "reproductions.ssl.rq1",
    "ssl/rq2": "reproductions.ssl.rq2",
    "ssl/rq3": "reproductions.ssl.rq3",
    "ssl/rq4": "reproductions.ssl.rq4",
    "mirec/table4": "reproductions.mirec.table4",
    "mirec/table5": "reproductions.mirec.table5",
    "mirec/table6": "reproductions.mirec.table6",
    "mirec/figure4": "reproductions.mirec.figure4",
    "mirec/figure5": "reproductions.mirec.figure5",
    "sml/table1": "reproductions.sml.table1",
    "sml/table1-returning": "reproductions.sml.table1_returning",
}


def get_spec(spec_id: str):
  if spec_id not in SPECS:
    raise SpecError(f"unknown spec {spec_id!r}; valid: {', '.join(sorted(SPECS))} "
                    "(see `ltbench list`)")
  return importlib.import_module(SPECS[spec_id]).get_spec()
