"""Full-ranking evaluation throughput: `ltbench.evaluate.rank_full` (rank and ties of each
target among the whole catalogue, the user's training items excluded) against two
references on the same chunks: the two-pass form it replaced (`target_rank` and
`tied_count` as separate reductions over the scores) and the matrix product alone (the
floor: every score must be computed once).

Default shapes are the Book-Crossing stand-in's (`bx-standin`: 114,082 items, ~21
training items per user) with d = 64, the catalogue where evaluation dominates an epoch
(MIRec Table 5, CDN Table 3). Random embeddings and exclusions: only the shapes matter.

  python benchmarks/rank_full.py                  # about 2 min on 2 cores
  python benchmarks/rank_full.py --small --no-record

Writes a JSON record naming the machine to results/benchmarks/ unless --no-record.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_step  # noqa: E402  (its environment(), best_of() and write_record())


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--users", type=int, default=8192, help="evaluation examples per call")
  p.add_argument("--items", type=int, default=114_082, help="catalogue size")
  p.add_argument("--dim", type=int, default=64)
  p.add_argument("--seeds", type=int, default=1, help="models ranked per call (S)")
  p.add_argument("--chunk", type=int, default=1024, help="rank_full's chunk_size")
  p.add_argument("--rounds", type=int, default=3, help="interleaved timed calls per variant")
  p.add_argument("--small", action="store_true", help="1,024 users x 5,000 items, 1 round")
  p.add_argument("--no-record", action="store_true")
  p.add_argument("--out", default="results/benchmarks")
  args = p.parse_args(argv)
  if args.small:
    args.users, args.items, args.rounds = 1024, 5000, 1
  if min(args.users, args.items, args.dim, args.seeds, args.chunk, args.rounds) < 1:
    p.error("--users, --items, --dim, --seeds, --chunk and --rounds must be >= 1")

  import jax
  import jax.numpy as jnp

  from ltbench import evaluate

  rng = np.random.default_rng(0)
  S, U, I, D = args.seeds, args.users, args.items, args.dim
  user_SxUxD = rng.standard_normal((S, U, D), dtype=np.float32)
  item_SxIxD = jnp.asarray(rng.standard_normal((S, I, D), dtype=np.float32))
  target_U = rng.integers(0, I, U)
  indptr = np.concatenate([[0], np.cumsum(rng.integers(1, 42, U))])  # ~21 per user
  indices = rng.integers(0, I, indptr[-1])
  exclude = (indptr, indices, np.arange(U))

  @jax.jit
  def two_pass_chunk(user_SxCxD, item_SxIxD, target_C, exclude_CxI):
    scores_SxCxI = jnp.einsum("scd,sid->sci", user_SxCxD, item_SxIxD)
    rank = jax.vmap(evaluate.target_rank, in_axes=(0, None, None))(
        scores_SxCxI, target_C, exclude_CxI)
    ties = jax.vmap(evaluate.tied_count, in_axes=(0, None, None))(
        scores_SxCxI, target_C, exclude_CxI)
    return rank, ties

  @jax.jit
  def product_chunk(user_SxCxD, item_SxIxD):
    return jnp.max(jnp.einsum("scd,sid->sci", user_SxCxD, item_SxIxD), -1)

  def chunks():
    for start in range(0, U, args.chunk):
      stop = min(start + args.chunk, U)
      yield start, stop

  def rank_full():
    return evaluate.rank_full(user_SxUxD, item_SxIxD, target_U, exclude,
                              chunk_size=args.chunk, with_ties=True)

  def two_pass():  # the same host work (mask per chunk), the old device program
    out = [two_pass_chunk(user_SxUxD[:, a:b], item_SxIxD, target_U[a:b],
                          evaluate.exclusion_mask(indptr, indices, np.arange(a, b), I))
           for a, b in chunks()]
    return [np.asarray(r) for pair in out for r in pair]

  def product():
    out = [product_chunk(user_SxUxD[:, a:b], item_SxIxD) for a, b in chunks()]
    return [np.asarray(r) for r in out]

  variants = {"rank_full": rank_full, "two_pass": two_pass, "product_only": product}
  got = rank_full()
  old = two_pass()
  ranks_old = np.concatenate(old[0::2], axis=1)
  ties_old = np.concatenate(old[1::2], axis=1)
  identical = bool(np.array_equal(got[0], ranks_old) and np.array_equal(got[1], ties_old))
  product()
  calls = train_step.interleaved_calls(variants, args.rounds)
  res = {}
  for v in variants:
    s = min(calls[v])
    res[v] = {"call_s": round(s, 4), "users_per_s": round(U / s, 1),
              "ms_per_1k_users": round(1e3 * s * 1000 / U, 2)}
    print(f"[bench] {v:12s}: {res[v]['users_per_s']:9.1f} users/s "
          f"({res[v]['ms_per_1k_users']} ms per 1,000 users)", file=sys.stderr)
  speedup = round(res["two_pass"]["call_s"] / res["rank_full"]["call_s"], 2)
  print(f"[bench] rank_full vs two-pass: x{speedup}; identical ranks and ties: {identical}",
        file=sys.stderr)
  record = {"benchmark": "rank_full", "users": U, "items": I, "dim": D, "seeds": S,
            "chunk": args.chunk, "mean_excluded_per_user": round(float(np.diff(indptr).mean()), 1),
            "small": args.small, "environment": train_step.environment(), "results": res,
            "speedup_vs_two_pass": speedup, "identical_to_two_pass": identical,
            "method": "one process, interleaved rounds, best call per variant, after a "
                      "compiling call; host exclusion masks included in rank_full and two_pass",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
  return train_step.emit_record(record, "rank_full", args)


if __name__ == "__main__":
  main()
