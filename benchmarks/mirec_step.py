"""Training throughput of MIRec's and MeLU's steps against the two-tower backbone they are
built on (MIRec, WWW'21; issue #9), measured side by side in one process.

Model: towers [256, 128, 64], embeddings 64, dropout 0.1, full softmax over all items, batch
1024, Adam (the MIRec specs' §5.2 settings). Variants, each ltbench's jitted, seed-vmapped
epoch function (`train.make_epoch_fn`) of this checkout:

  two_tower     the backbone (Table 4's Two-tower row)
  melu          MeLU: per step 64 user tasks of 8 support + 8 query examples, one local SGD
                step on the user tower's MLP (second order), the global step on everything
  mirec_stage1  MIRec's first stage: θ* on Ω* with the logQ-corrected softmax (Eq. 7)
  mirec_meta    MIRec's second stage: a batch of Ω(k), Eq. 5 with one local step on θ and
                the global gradient in θ and F's w through it (Algorithm 1 lines 15-20)

and "mirec" in the summary, the 100 + 100 epoch average of its two stages. The timed calls
of the variants are interleaved round by round and each variant keeps its best, so a load
spike on a shared machine hits all of them alike and the ratios stay meaningful. The
real-epoch rate adds the per-epoch work (the sampler's draw of a full epoch; MIRec's Ω(k)
mask) spread over a real epoch, as in benchmarks/train_step.py (whose helpers this uses):

  real-epoch seed-steps/s = steps_per_epoch * S / (per_epoch_s + steps_per_epoch * step_s)

  python benchmarks/mirec_step.py --data-dir DIR     # DIR/ml-1m (else ML-1M-sized synthetic)
  python benchmarks/mirec_step.py --small --no-record   # a smoke run (compile-bound): ~2 min
                                                        # on a loaded 2-core CPU

Writes a JSON record naming the machine to results/benchmarks/ unless --no-record.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_step  # noqa: E402  (load_bundle, best_of, summarise, environment)

VARIANTS = {  # name -> (ltbench method, MIRec stage or None)
    "two_tower": ("two_tower", None),
    "melu": ("melu", None),
    "mirec_stage1": ("mirec", 1),
    "mirec_meta": ("mirec", 2),
}
EPOCHS = 200  # the paper's schedule: MIRec switches stages at epoch 100


class Program:
  """ltbench's epoch function of one variant for (seeds, steps), and its per-epoch work."""

  def __init__(self, bundle, data, variant, num_seeds, num_steps, batch_size):
    import jax
    import jax.numpy as jnp
    from ltbench import methods, train as train_lib
    from ltbench.methods.baselines import ModelConfig
    if variant not in VARIANTS:
      raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    method_name, stage = VARIANTS[variant]
    self.jax, self.jnp = jax, jnp
    model_cfg = ModelConfig(embed_dim=64, sizes=(256, 128, 64), dropout=0.1)
    train_cfg = train_lib.TrainConfig(epochs=EPOCHS, batch_size=batch_size)
    method = methods.build(method_name, bundle, model_cfg, train_cfg)
    # The stage is chosen by the epoch index the loop passes (traced, unbatched: one branch).
    self.epoch = method.switch_epoch if stage == 2 else 0
    self.keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    self.state = train_lib.init_state(method, self.keys, data, 1e-3)
    hyper = train_lib.hyper_values(method, 0.0)
    fn = train_lib.make_epoch_fn(method, train_lib.ADAM, num_steps, batch_size)
    self.epoch_fn = lambda st, e: fn(st, self.keys, data, e, hyper)
    full = data["train_user"].shape[0] // batch_size

    def per_epoch(key, epoch):  # what the epoch function draws once per call
      d = {**data, **method.trial_data(key, data)} if hasattr(method, "trial_data") else data
      return method.sample(key, d, epoch, full, batch_size)

    self.sample_fn = jax.jit(jax.vmap(per_epoch, in_axes=(0, None)))
    t0 = time.perf_counter()
    self.call()
    self.sample()
    self.compile_s = time.perf_counter() - t0

  def call(self):
    self.epoch += 1  # stays within its stage for any realistic number of calls
    self.state, loss = self.epoch_fn(self.state, self.jnp.int32(self.epoch))
    self.jax.block_until_ready(loss)

  def sample(self):
    self.jax.block_until_ready(self.sample_fn(self.keys, self.jnp.int32(self.epoch)))


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data-dir", default=None, help="folder holding ml-1m/ (else synthetic)")
  p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants")
  p.add_argument("--seeds", type=int, default=5, help="vmapped seeds for seed-steps/s")
  p.add_argument("--steps", type=int, default=0,
                 help="scanned steps per timed call (default: 24; --small: 4)")
  p.add_argument("--rounds", type=int, default=3, help="interleaved timed calls per variant")
  p.add_argument("--batch", type=int, default=1024)
  p.add_argument("--small", action="store_true",
                 help="tiny synthetic data, batch 256, 1 seed, 1 round (a smoke run)")
  p.add_argument("--no-record", action="store_true")
  p.add_argument("--out", default="results/benchmarks")
  args = p.parse_args(argv)
  variants = args.variants.split(",")
  unknown = [v for v in variants if v not in VARIANTS]
  if unknown:
    p.error(f"unknown variant(s) {unknown}; valid: {', '.join(VARIANTS)}")
  if "two_tower" not in variants:
    p.error("--variants must include two_tower, the backbone the others are compared with")
  if args.small:
    args.batch, args.seeds, args.rounds = min(args.batch, 256), 1, 1
  steps = args.steps or (4 if args.small else 24)

  bundle, source = train_step.load_bundle(args.data_dir, args.small)
  data = bundle.device_arrays()
  steps_per_epoch = bundle.num_train // args.batch
  print(f"[bench] {source}: {bundle.summary()}", file=sys.stderr, flush=True)
  results: dict = {}
  for seeds in sorted({1, args.seeds}):
    programs, compile_s = {}, {}
    for v in variants:
      programs[v] = Program(bundle, data, v, seeds, steps, args.batch)
      compile_s[v] = round(programs[v].compile_s, 2)
      print(f"[bench] {v} x{seeds}: compiled in {compile_s[v]} s", file=sys.stderr, flush=True)
    calls = train_step.interleaved_calls({v: programs[v].call for v in variants}, args.rounds)
    for v in variants:
      sample_s = train_step.best_of(programs[v].sample, 3)
      stats = train_step.summarise(calls[v], sample_s, steps, seeds, steps_per_epoch)
      results.setdefault(str(seeds), {})[v] = {"compile_s": compile_s[v], **stats}
      print(f"[bench] {v:12s} x{seeds}: {stats['real_epoch_seed_steps_per_s']:8.2f} real-epoch "
            f"seed-steps/s (step {stats['step_ms']} ms)", file=sys.stderr, flush=True)
    del programs

  ratios = {}
  for seeds, res in results.items():
    base = res["two_tower"]["real_epoch_s"]
    if "mirec_stage1" in res and "mirec_meta" in res:  # 100 + 100 epochs: the mean epoch
      epoch_s = (res["mirec_stage1"]["real_epoch_s"] + res["mirec_meta"]["real_epoch_s"]) / 2
      res["mirec"] = {"real_epoch_s": round(epoch_s, 2), "real_epoch_seed_steps_per_s":
                      round(steps_per_epoch * int(seeds) / epoch_s, 2),
                      "note": "mean epoch of mirec_stage1 and mirec_meta (100 + 100 epochs)"}
    for v, r in res.items():
      if v != "two_tower":
        ratios[f"{v} x{seeds}: epoch time / two_tower's"] = round(r["real_epoch_s"] / base, 2)
  for k, v in ratios.items():
    print(f"[bench] {k} = {v}", file=sys.stderr)
  record = {"benchmark": "mirec_step", "data": source, "bundle": bundle.summary(),
            "model": "towers [256,128,64], embed 64, dropout 0.1, full softmax, Adam 1e-3",
            "batch": args.batch, "steps_per_call": steps, "steps_per_epoch": steps_per_epoch,
            "small": args.small, "environment": train_step.environment(),
            "throughput": results, "ratios": ratios,
            "method": "one process, interleaved rounds, best call per variant; real-epoch rate "
                      "= per-epoch work + steps_per_epoch x per-step time",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
  return train_step.emit_record(record, "mirec_step", args)


if __name__ == "__main__":
  main()
