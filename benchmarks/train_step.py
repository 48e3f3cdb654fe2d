"""Training-step and evaluation throughput of the ML-1M-sized two-tower backbone.

Model: towers [256, 128, 64], embeddings 64, full softmax over all items, batch 1024, Adam.
Measures steps/s of the scanned epoch function for one seed and seed-steps/s for S vmapped
seeds, and full-ranking evaluation throughput (test examples/s, S seeds at once).
Targets on one H100 (issue #2): >= 4,000 steps/s, >= 6,500 seed-steps/s. With
`--methods two_tower,cdn` it also times CDN (issue #3: within 1.5x of the backbone).

  python benchmarks/train_step.py --data-dir ../shared/data   # real ML-1M if present
  python benchmarks/train_step.py --steps 20 --repeats 2      # shorter, e.g. on a CPU

Writes a JSON record (device named) to results/benchmarks/ unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import optax

from ltbench import methods
from ltbench.data import registry, sources
from ltbench.harness import runner
from ltbench.methods.baselines import ModelConfig
from ltbench.train import TrainConfig, TrainState, make_epoch_fn


def bundle_for_benchmark(data_dir):
  if sources.locate("ml-1m", data_dir) is not None:
    return registry.load_bundle("ml-1m", data_dir=data_dir, download=False), "ml-1m"
  # Same catalogue and user count as ML-1M; feature widths differ slightly.
  cfg = {"num_users": 6040, "num_items": 3706, "mean_per_user": 165.0}
  return registry.load_bundle("synthetic", synthetic_config=cfg), "synthetic ML-1M-sized"


def time_epochs(method, data, num_examples, num_seeds, steps, batch, repeats):
  tx = optax.adam(1e-3)
  keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
  params = jax.vmap(method.init, in_axes=(0, None))(keys, data)
  state = TrainState(params, jax.vmap(tx.init)(params))
  epoch_fn = make_epoch_fn(method, tx, steps, batch)
  t0 = time.perf_counter()
  state, loss = epoch_fn(state, keys, data, jnp.int32(0))
  jax.block_until_ready(loss)
  compile_s = time.perf_counter() - t0
  times = []
  for r in range(repeats):
    t0 = time.perf_counter()
    state, loss = epoch_fn(state, keys, data, jnp.int32(r + 1))
    jax.block_until_ready(loss)
    times.append(time.perf_counter() - t0)
  best = min(times)
  return {"seeds": num_seeds, "steps_per_call": steps, "first_call_s": round(compile_s, 2),
          "call_s": [round(t, 4) for t in times], "steps_per_s": round(steps / best, 1),
          "seed_steps_per_s": round(steps * num_seeds / best, 1)}, state


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data-dir", default=None)
  p.add_argument("--steps", type=int, default=200, help="scanned steps per timed call")
  p.add_argument("--repeats", type=int, default=3, help="timed calls (the best is reported)")
  p.add_argument("--seeds", type=int, default=5, help="vmapped seeds for seed-steps/s")
  p.add_argument("--batch", type=int, default=1024)
  p.add_argument("--methods", default="two_tower",
                 help="comma-separated methods to time (e.g. two_tower,cdn)")
  p.add_argument("--no-record", action="store_true")
  p.add_argument("--out", default="results/benchmarks")
  args = p.parse_args(argv)

  bundle, source = bundle_for_benchmark(args.data_dir)
  data = bundle.device_arrays()
  model_cfg = ModelConfig(embed_dim=64, sizes=(256, 128, 64), dropout=0.1)
  train_cfg = TrainConfig(batch_size=args.batch)
  env = runner.environment()
  print(f"[bench] {env['device']} | {source}: {bundle.summary()}", file=sys.stderr)
  timings = {}
  for name in args.methods.split(","):
    method = methods.build(name, bundle, model_cfg, train_cfg)
    one, _ = time_epochs(method, data, bundle.num_train, 1, args.steps, args.batch, args.repeats)
    print(f"[bench] {name} 1 seed: {one}", file=sys.stderr)
    many, state = time_epochs(method, data, bundle.num_train, args.seeds, args.steps, args.batch,
                              args.repeats)
    print(f"[bench] {name} {args.seeds} seeds: {many}", file=sys.stderr)
    runner.evaluate_split(method, state.params, data, bundle, "test", (50,))  # compile
    t0 = time.perf_counter()
    runner.evaluate_split(method, state.params, data, bundle, "test", (50,))
    eval_s = time.perf_counter() - t0
    evaluation = {"seeds": args.seeds, "test_examples": int(len(bundle.test_item)),
                  "items": bundle.num_items, "seconds": round(eval_s, 3),
                  "example_rankings_per_s": round(args.seeds * len(bundle.test_item) / eval_s, 1)}
    print(f"[bench] {name} evaluation: {evaluation}", file=sys.stderr)
    timings[name] = {"one_seed": one, "vmapped": many, "evaluation": evaluation}
  first = next(iter(timings))
  one, many, evaluation = (timings[first][k] for k in ("one_seed", "vmapped", "evaluation"))
  steps_per_epoch = bundle.num_train // args.batch
  record = {"benchmark": "train_step", "data": source, "bundle": bundle.summary(),
            "model": "two-tower [256,128,64], embed 64, full softmax, Adam", "batch": args.batch,
            "environment": env, "one_seed": one, "vmapped": many, "evaluation": evaluation,
            "methods": timings,
            "slowdown_vs_first": {n: round(timings[first]["one_seed"]["steps_per_s"] /
                                           t["one_seed"]["steps_per_s"], 2)
                                  for n, t in timings.items()},
            "paper_scale_estimate_s": {
                "per_row_5_seeds_40_epochs": round(40 * steps_per_epoch * args.seeds /
                                                   many["seed_steps_per_s"], 0)},
            "targets_h100": {"steps_per_s": 4000, "seed_steps_per_s": 6500},
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
  print(json.dumps(record, indent=1))
  if not args.no_record:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = env["device"].split(":")[0]
    path = out / f"train_step-{dev}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=1))
    print(f"[bench] recorded {path}", file=sys.stderr)


if __name__ == "__main__":
  main()
