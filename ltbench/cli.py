"""The `ltbench` command line: run, tune, diff, list, data."""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import ltbench
from ltbench.errors import DataError, LtbenchError, SpecError

DEFAULT_SPEC = "cdn/table2"
# The demo (`ltbench run` with no spec) runs these rows of the default spec's quick variant,
# so that it finishes within a minute on a 2-core CPU.
DEMO_ROWS = ["Two-tower", "CDN"]


def _ints(text: str) -> list[int]:
  try:
    return [int(x) for x in text.split(",") if x.strip()]
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
  return [x.strip() for x in text.split(",") if x.strip()]


def resolve_spec(spec_id: str | None, quick: bool, epochs: int | None = None,
                 dataset: str | None = None):
  from reproductions import get_spec
  spec = get_spec(spec_id or DEFAULT_SPEC)
  if quick or spec_id is None:
    if spec.quick is None:
      raise SpecError(f"{spec.id} has no --quick variant")
    spec = spec.quick()
  if epochs is not None:
    if epochs < 1:
      raise SpecError(f"--epochs must be >= 1, got {epochs}")
    note = (f"REDUCED RUN: {epochs} epochs instead of the spec's {spec.train.epochs} "
            "(`--epochs`); every other setting is the spec's.")
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=epochs),
                               variant=f"{spec.variant}-epochs{epochs}",
                               notes=(note,) + spec.notes)
  if dataset is not None:
    from ltbench.data import registry
    registry.get(dataset)
    note = (f"OTHER DATA SET: run on {dataset} instead of the spec's {spec.dataset} "
            f"(`--dataset`); the paper's values are for {spec.dataset}, shown for reference.")
    spec = dataclasses.replace(spec, dataset=dataset, variant=f"{spec.variant}-{dataset}",
                               head_fraction=None, notes=(note,) + spec.notes)
    from ltbench.harness.spec import for_dataset
    spec = for_dataset(spec, dataset)
  return spec


def cmd_run(args) -> int:
  from ltbench.harness import report, runner
  spec = resolve_spec(args.spec, args.quick, args.epochs, args.dataset)
  if args.spec is None:
    args.rows = args.rows or DEMO_ROWS
    print(f"[ltbench] no spec given: running the demo, {spec.id} --quick --rows "
          f"{','.join(args.rows)} on the embedded synthetic data", file=sys.stderr)
  table, out_dir = runner.run_spec(spec, seeds=args.seeds, rows=args.rows, data_dir=args.data_dir,
                                   out_root=args.out, download=not args.no_download,
                                   allow_modified_data=args.allow_modified_data)
  print((out_dir / "table.md").read_text())
  if spec.is_quick:
    print(f"[ltbench] {report.QUICK_BANNER}", file=sys.stderr)
  else:
    print(report.diff_text(table))
  return 0


def cmd_tune(args) -> int:
  from ltbench.harness import tune
  spec = resolve_spec(args.spec, args.quick, args.epochs, args.dataset)
  tune.run_tune(spec, args.rows, args.params, seeds=args.seeds, data_dir=args.data_dir,
                out_root=args.out, download=not args.no_download,
                allow_modified_data=args.allow_modified_data)
  return 0


def cmd_report(args) -> int:
  from ltbench.harness import runner
  spec = resolve_spec(args.spec, args.quick, args.epochs, args.dataset)
  _, out_dir = runner.report_spec(spec, data_dir=args.data_dir, out_root=args.out,
                                  download=not args.no_download,
                                  allow_modified_data=args.allow_modified_data)
  print((out_dir / "table.md").read_text())
  return 0


def cmd_diff(args) -> int:
  from ltbench.harness import report, runner
  spec = resolve_spec(args.spec, args.quick, args.epochs, args.dataset)
  out_dir = pathlib.Path(args.out) / spec.out_name
  table = runner.load_table(spec, out_dir)
  print(report.diff_text(table))
  return 0


def cmd_list(args) -> int:
  import tabulate
  from ltbench.data import registry
  from reproductions import SPECS, get_spec
  rows = []
  for spec_id in sorted(SPECS):
    spec = get_spec(spec_id)
    found = registry.locate(spec.dataset, args.data_dir)
    present = ("embedded (generated)" if found == "generated" else f"yes ({found})" if found
               else "no (ltbench data info " + spec.dataset + ")")
    rows.append([spec_id, spec.dataset, ", ".join(r.name for r in spec.rows), present,
                 "yes" if spec.quick else "no"])
  print(tabulate.tabulate(rows, headers=["spec", "data set", "rows", "data present", "--quick"],
                          tablefmt="github"))
  print("\nData sets: " + ", ".join(f"{d.name} ({d.description})"
                                    for d in registry.DATASETS.values()))
  return 0


def cmd_data(args) -> int:
  from ltbench.data import registry, sources
  registry.get(args.name)
  if args.name.startswith("amazon-") and not args.name.endswith("-standin"):
    from ltbench.data import amazon
    print(f"{args.name}: {registry.DATASETS[args.name].description}")
    if args.action == "download":
      raise DataError(f"ltbench does not download {args.name}; place the file by hand:\n"
                      + str(_amazon_missing(amazon, args)))
    print(f"Using {amazon.find_file(args.name.split('-')[1], args.data_dir)}")
    if args.action == "prepare":
      data = registry.load_sequences(args.name, data_dir=args.data_dir)
      print(data.summary())
      print(json.dumps(data.meta, indent=1, default=str))
    return 0
  if registry.DATASETS[args.name].protocol == "periods":
    from ltbench.data.periods import load_period_stream
    print(f"{args.name}: {registry.DATASETS[args.name].description} (ltbench/data/periods.py; "
          "MovieLens files as for ml-100k / ml-1m)")
    if args.action == "prepare":
      print(load_period_stream(args.name, data_dir=args.data_dir).summary())
    return 0
  if registry.DATASETS[args.name].protocol == "sequences":
    print(f"{args.name}: {registry.DATASETS[args.name].description} "
          "(generated: ltbench/data/hmm.py, ltbench/data/amazon.py); nothing to download.")
    if args.action == "prepare":
      print(registry.load_sequences(args.name).summary())
    return 0
  if args.name in ("synthetic", "bx-standin"):
    print(f"{args.name}: {registry.DATASETS[args.name].description} "
          "(ltbench/data/synthetic.py); nothing to download.")
    if args.action == "prepare":
      print(registry.load_bundle(args.name).summary())
    return 0
  if args.action == "info":
    print(sources.info(args.name, args.data_dir))
  elif args.action == "download":
    root = pathlib.Path(args.data_dir) if args.data_dir else sources.search_roots(None)[-1]
    path = sources.locate(args.name, args.data_dir)
    if path is not None:
      print(f"{args.name} is already present at {path}")
    else:
      path = sources.download(args.name, root)
      print(f"{args.name} downloaded and verified into {path}")
  elif args.action == "prepare":
    bundle = registry.load_bundle(args.name, data_dir=args.data_dir, download=not args.no_download,
                                  allow_modified_data=args.allow_modified_data)
    print(bundle.summary())
    print(json.dumps(bundle.meta, indent=1, default=str))
  return 0


def _amazon_missing(amazon, args) -> str:
  try:
    return f"(already present at {amazon.find_file(args.name.split('-')[1], args.data_dir)})"
  except DataError as e:
    return str(e)


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="ltbench", description="Seeded, head/tail-sliced reproductions of long-tail "
      "recommendation papers, diffed against the papers' own numbers.")
  sub = p.add_subparsers(dest="command", required=True)

  p.add_argument("--version", action="version", version=f"ltbench {ltbench.__version__}")

  def common(q, out=True, modified=True):
    q.add_argument("--data-dir", default=None,
                   help="directory holding data sets as <dir>/<name>/ or the files themselves "
                        "(else $LTBENCH_DATA, the same way, then the user cache)")
    if modified:
      q.add_argument("--allow-modified-data", action="store_true",
                     help="run on data files that fail their recorded checksum (the results "
                          "record data_modified: true); without it such files stop the run")
    if out:
      q.add_argument("--out", default="results", help="results root (default: results)")

  r = sub.add_parser("run", help="run a table spec (no SPEC: the synthetic demo)")
  r.add_argument("spec", nargs="?", default=None, help="e.g. cdn/table2 (see `ltbench list`)")
  r.add_argument("--quick", action="store_true", help="the spec's small synthetic variant")
  r.add_argument("--seeds", type=_ints, default=None,
                 help="e.g. 0,1,2: distinct integers in 0..2^32-1 (default: the spec's)")
  r.add_argument("--rows", type=_names, default=None, help="comma-separated row names")
  r.add_argument("--epochs", type=int, default=None,
                 help="override the epoch count (a reduced run; results go to a separate folder)")
  r.add_argument("--dataset", default=None,
                 help="run the spec on another registered data set (results go to a separate "
                      "folder; the paper's numbers are for the spec's own data set)")
  r.add_argument("--no-download", action="store_true", help="fail instead of downloading data")
  common(r)
  r.set_defaults(func=cmd_run)

  t = sub.add_parser("tune", help="choose hyper-parameters on the validation split from the "
                     "paper's grid (the rows' `grid`)")
  t.add_argument("spec", help="e.g. cdn/table2")
  t.add_argument("--params", type=_names, required=True,
                 help="grid parameters to search, e.g. gamma or learning_rate,dropout (the "
                      "others keep the row's values)")
  t.add_argument("--rows", type=_names, default=None,
                 help="rows to tune (default: every row with a grid for --params)")
  t.add_argument("--quick", action="store_true", help="the spec's small synthetic variant")
  t.add_argument("--seeds", type=_ints, default=None, help="e.g. 0,1,2 (default: the spec's)")
  t.add_argument("--epochs", type=int, default=None, help="a reduced search (separate folder)")
  t.add_argument("--dataset", default=None, help="search on another registered data set")
  t.add_argument("--no-download", action="store_true", help="fail instead of downloading data")
  common(t)
  t.set_defaults(func=cmd_tune)

  rp = sub.add_parser("report", help="rewrite a spec's reports from its finished trials, "
                      "training nothing (e.g. while a long run goes on)")
  rp.add_argument("spec", help="e.g. ssl/rq1")
  rp.add_argument("--quick", action="store_true", help="the quick run's folder")
  rp.add_argument("--epochs", type=int, default=None, help="the reduced run of that length")
  rp.add_argument("--dataset", default=None, help="the run on that data set")
  rp.add_argument("--no-download", action="store_true", help="fail instead of downloading data")
  common(rp)
  rp.set_defaults(func=cmd_report)

  d = sub.add_parser("diff", help="ours vs the paper, per cell, and the paper's claims")
  d.add_argument("spec")
  d.add_argument("--quick", action="store_true")
  d.add_argument("--epochs", type=int, default=None, help="diff the reduced run of that length")
  d.add_argument("--dataset", default=None, help="diff the run on that data set")
  d.add_argument("--out", default="results")
  d.set_defaults(func=cmd_diff)

  l = sub.add_parser("list", help="every spec, its data set, rows, and whether data is present")
  common(l, out=False, modified=False)
  l.set_defaults(func=cmd_list)

  da = sub.add_parser("data", help="where data is looked for, download, prepare")
  da.add_argument("action", choices=["info", "download", "prepare"])
  da.add_argument("name", help="synthetic, ml-100k or ml-1m")
  da.add_argument("--no-download", action="store_true")
  common(da, out=False)
  da.set_defaults(func=cmd_data)
  return p


def enable_compilation_cache() -> None:
  """Persists XLA compilations under the user cache (same program = no recompile on the next
  run). Set LTBENCH_JAX_CACHE=0 to turn it off, or to a directory to move it."""
  import os
  where = os.environ.get("LTBENCH_JAX_CACHE", "")
  if where == "0":
    return
  import jax
  from ltbench.data.registry import cache_root
  jax.config.update("jax_compilation_cache_dir", where or str(cache_root() / "jax"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  enable_compilation_cache()
  try:
    return args.func(args)
  except LtbenchError as e:
    print(f"ltbench: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("\nltbench: interrupted; finished trials are on disk and a rerun resumes from them",
          file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
