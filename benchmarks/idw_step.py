"""Training throughput of the IDW (2023) sequential two-tower: seed-steps/s of SUR, MUR and
MUR-IDW (wake phase: the weighted loss of Eq. 10), and the wall time of one sleep phase
(Algorithm 2: the weighted Gaussian KDE of every item vector, Eqs. 8-9), on ML-1M-sized
sequence data (issue #10, "Speed": a sleep phase must cost less than one training epoch).

Model: the paper's backbone (d = 16, 2 transformer layers of 4 heads, M = 1 or 5, item MLP
Dense(16) x 2), in-batch softmax with logQ, Adam, batch 1024 (reproductions/idw/common.py).

Data: `ml-1m-u2999-time` from --data-dir when its files are there (the users whose ratings
have timestamps), else synthetic histories sized like it (2,999 users, 3,706 items, ~165
items per user, Zipf item popularity), cut into sequences of 30 as §4.1 does. Only the shapes
matter for the timing.

Each variant's timed call is the shared jitted, seed-vmapped epoch function of
`ltbench.train` over `--steps` scanned steps (sampling of the permutation included); the
rounds are interleaved so that a load spike hits every variant alike, and each keeps its
best call. One training epoch's time is estimated as steps_per_epoch x the per-step time of
the call. The sleep phase is `idw.sleep_fn` (jitted and vmapped over the seeds) timed the
same way (best of the rounds, after a compiling call).

  python benchmarks/idw_step.py --data-dir DIR                  # about 10 min on 2 cores
  python benchmarks/idw_step.py --small --no-record              # a smoke run: ~1-2 min

Writes a JSON record naming the machine to results/benchmarks/ unless --no-record.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_step  # noqa: E402  (its environment() and best_of())

ML1M_U2999 = {"num_users": 2999, "num_items": 3706, "mean_len": 165.0}
SMALL = {"num_users": 200, "num_items": 300, "mean_len": 40.0}
VARIANTS = ("sur", "mur", "mur_idw")


def synthetic_sequences(num_users: int, num_items: int, mean_len: float, seed: int = 0,
                        name: str = "synthetic ml-1m-u2999-sized"):
  """Time-ordered histories with Zipf item popularity and lognormal lengths (at least 20),
  cut into sequences as the IDW protocol does (99 sampled negatives)."""
  from ltbench.data import sequences
  rng = np.random.default_rng(seed)
  lens_U = np.maximum(20, rng.lognormal(np.log(mean_len) - 0.5, 1.0, num_users)).astype(np.int64)
  lens_U = np.minimum(lens_U, num_items // 2)
  pop_I = 1.0 / np.arange(1, num_items + 1) ** 0.9
  pop_I /= pop_I.sum()
  items = np.concatenate([rng.choice(num_items, n, replace=False, p=pop_I) for n in lens_U])
  indptr = np.concatenate([[0], np.cumsum(lens_U)])
  cfg = sequences.SequenceConfig(max_len=30, windows="cut", num_negatives=99)
  return sequences.build_sequences(indptr, items.astype(np.int32), num_items, cfg,
                                   name, {"source": "benchmark"})


def load(data_dir, small):
  from ltbench.data import registry, sources
  if small:
    return synthetic_sequences(**SMALL, name="synthetic small"), "synthetic small"
  if data_dir and sources.locate("ml-1m", data_dir) is not None:
    return (registry.load_sequences("ml-1m-u2999-time", data_dir=data_dir, download=False),
            "ml-1m-u2999-time")
  return synthetic_sequences(**ML1M_U2999), "synthetic ml-1m-u2999-time-sized"


class Program:
  """One method's jitted, seed-vmapped epoch function over `steps` steps, with its state."""

  def __init__(self, seq_data, data, variant, seeds, steps, batch, length_strata=1):
    import jax
    import jax.numpy as jnp

    from ltbench import methods
    from ltbench import train as train_lib
    from ltbench.methods import idw
    from reproductions.idw.common import MODEL, TRAIN
    cfg = dataclasses.replace(TRAIN, batch_size=batch)
    model = dataclasses.replace(MODEL, length_strata=length_strata)
    self.method = methods.build(variant, seq_data, model, cfg, name=variant)
    self.data, self.jnp = data, jnp
    self.keys_S = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    params_S = jax.tree.map(lambda *x: jnp.stack(x),
                            *(self.method.init(k, data) for k in self.keys_S))
    if isinstance(self.method, idw.IDWTwoTower):  # the wake phase: the weighted loss
      params_S = {**params_S, "phase": jnp.full((seeds,), idw.WAKE, jnp.float32)}
    self.state = train_lib.TrainState(params_S, train_lib.opt_init(train_lib.ADAM, params_S,
                                                                   cfg.learning_rate))
    self.hyper = train_lib.hyper_values(self.method, cfg.weight_decay)
    self.fn = train_lib.make_epoch_fn(self.method, train_lib.ADAM, steps, batch)
    t0 = time.perf_counter()
    self.call()
    self.compile_s = time.perf_counter() - t0

  def call(self):
    import jax
    self.state, loss_S = self.fn(self.state, self.keys_S, self.data, self.jnp.int32(0),
                                 self.hyper)
    jax.block_until_ready(loss_S)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data-dir", default=None, help="folder holding ml-1m/ (else synthetic)")
  p.add_argument("--seeds", type=int, default=5, help="seeds vmapped per call (and 1)")
  p.add_argument("--steps", type=int, default=0,
                 help="scanned steps per timed call (default: 24; --small: 4)")
  p.add_argument("--rounds", type=int, default=3, help="interleaved timed calls per variant")
  p.add_argument("--batch", type=int, default=1024)
  p.add_argument("--small", action="store_true",
                 help="tiny synthetic data, batch 128, 1 seed, 1 round (a smoke run)")
  p.add_argument("--length-strata", type=int, default=3,
                 help="also time each variant with training batches stratified by input "
                      "length into this many strata (SeqModelConfig.length_strata; 1: skip)")
  p.add_argument("--no-record", action="store_true")
  p.add_argument("--out", default="results/benchmarks")
  args = p.parse_args(argv)
  if args.small:
    args.batch, args.seeds, args.rounds = min(args.batch, 128), 1, 1
  if min(args.seeds, args.rounds, args.batch) < 1 or args.steps < 0:
    p.error("--seeds, --rounds and --batch must be >= 1 and --steps >= 0")
  steps = args.steps or (4 if args.small else 24)

  import jax
  import jax.numpy as jnp

  from ltbench import train as train_lib
  from ltbench.methods import idw
  seq_data, source = load(args.data_dir, args.small)
  data = seq_data.device_arrays()
  num_examples = int(seq_data.train_row_E.shape[0])
  steps_per_epoch = train_lib.steps_per_epoch(num_examples, args.batch)
  print(f"[bench] {source}: {seq_data.summary()}; {steps_per_epoch} steps per epoch",
        file=sys.stderr, flush=True)
  results: dict = {}
  for seeds in sorted({1, args.seeds}):
    programs = {v: Program(seq_data, data, v, seeds, steps, args.batch) for v in VARIANTS}
    if args.length_strata > 1:
      programs.update({f"{v}+strata{args.length_strata}": Program(
          seq_data, data, v, seeds, steps, args.batch, args.length_strata) for v in VARIANTS})
    variants = tuple(programs)
    for v, prog in programs.items():
      print(f"[bench] {v} x{seeds}: compiled in {prog.compile_s:.1f} s", file=sys.stderr,
            flush=True)
    sleep = idw.sleep_fn(programs["mur_idw"].method)
    momentum = jnp.float32(0.9)

    def sleep_call():
      params, delta_S = sleep(programs["mur_idw"].state.params, data, momentum)
      jax.block_until_ready((params, delta_S))

    t0 = time.perf_counter()
    sleep_call()
    sleep_compile_s = time.perf_counter() - t0
    calls = train_step.interleaved_calls(
        {**{v: programs[v].call for v in variants}, "sleep": sleep_call}, args.rounds)
    res = {}
    for v in variants:
      call_s = min(calls[v])
      res[v] = {"compile_s": round(programs[v].compile_s, 2), "call_s": round(call_s, 4),
                "step_ms": round(1e3 * call_s / steps, 3),
                "seed_steps_per_s": round(steps * seeds / call_s, 2),
                "epoch_s": round(steps_per_epoch * call_s / steps, 3)}
      print(f"[bench] {v:16s} x{seeds}: {res[v]['seed_steps_per_s']:9.2f} seed-steps/s "
            f"(step {res[v]['step_ms']} ms, epoch ~{res[v]['epoch_s']} s)", file=sys.stderr)
    sleep_s = min(calls["sleep"])
    res["sleep"] = {"compile_s": round(sleep_compile_s, 2), "wall_s": round(sleep_s, 4),
                    "fraction_of_mur_idw_epoch": round(sleep_s / res["mur_idw"]["epoch_s"], 4)}
    print(f"[bench] sleep    x{seeds}: {sleep_s:.3f} s = "
          f"{res['sleep']['fraction_of_mur_idw_epoch']:.3f} of a MUR-IDW epoch",
          file=sys.stderr, flush=True)
    results[str(seeds)] = res
    del programs
  record = {"benchmark": "idw_step", "data": source, "data_summary": seq_data.summary(),
            "num_items": seq_data.num_items, "num_examples": num_examples,
            "model": "IDW backbone: d 16, 2 x 4-head transformer layers, M = 1 (sur) or 5, "
                     "item MLP 16 x 2, in-batch softmax + logQ, Adam 0.01",
            "batch": args.batch, "steps_per_call": steps, "steps_per_epoch": steps_per_epoch,
            "small": args.small, "environment": train_step.environment(),
            "throughput": results,
            "sleep_below_one_epoch": all(r["sleep"]["fraction_of_mur_idw_epoch"] < 1
                                         for r in results.values()),
            "method": "one process, interleaved rounds, best call per variant; epoch time = "
                      "steps_per_epoch x per-step time of a call (sampling included)",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
  return train_step.emit_record(record, "idw_step", args)


if __name__ == "__main__":
  main()
