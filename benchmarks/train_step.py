"""Training throughput of the ML-1M two-tower backbone (and CDN): ltbench against its own
earlier code, a minimal pure-JAX step, and PyTorch eager, measured side by side.

Model: towers [256, 128, 64], embeddings 64, dropout 0.1, full softmax over all items,
batch 1024, Adam. Every variant runs in its own worker process; the parent interleaves
their timed calls round by round and keeps each one's best, so a load spike on a shared
machine hits all of them alike and the ratios stay meaningful.

Real-epoch rate: a timed call runs `--steps` scanned steps plus the per-epoch work (the
permutation of all training examples, or CDN's Ω_r draw). That per-epoch part is timed on
its own and spread over a real epoch (ML-1M: 965 steps), so

  real-epoch seed-steps/s = steps_per_epoch * S / (per_epoch_s + steps_per_epoch * step_s)

with step_s = (call_s - per_epoch_s) / steps. Both parts are reported.

Variants (each skipped with a note when unavailable):
  ltbench     this checkout
  baseline    ltbench at `--baseline REV` (default: the last commit before the CPU work of
              issue #7), checked out with `git worktree` under /tmp and imported instead
  reference   benchmarks/reference_step.py: a minimal pure-JAX step of the same model
  torch       benchmarks/torch_step.py: PyTorch eager, one seed (needs `pip install torch`)

  python benchmarks/train_step.py --data-dir DIR            # DIR/ml-1m; about 15 min on 2 cores
  python benchmarks/train_step.py --methods two_tower --rounds 2 --no-record

The roofline: XLA's FLOP count of one (forward + backward) step divided by this machine's
best float32 matrix-multiply rate through XLA (measured in the same run, at a square size and
at the step's largest shapes) is the fastest any implementation of the step can run here.
The record gives that floor, the fraction of it each step reaches, and the largest ratio
over the baseline that the floor allows.

It also prints a per-phase breakdown of one ltbench step (sampling, towers, logits and
softmax, backward, optimiser, evaluation) and writes a JSON record naming the machine to
results/benchmarks/ unless --no-record. Targets (issue #7, this CPU): >= 2.5x the baseline
for the two-tower and CDN at 1 and S seeds, >= 1.5x PyTorch eager, within 1.25x of the
pure-JAX reference.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

BASELINE_REV = "0370de7"  # ltbench before the CPU-throughput work (issue #7)
HERE = pathlib.Path(__file__).resolve().parent
SYNTHETIC_ML1M = {"num_users": 6040, "num_items": 3706, "mean_per_user": 165.0}
SMALL = {"num_users": 300, "num_items": 200, "mean_per_user": 30.0}


# -- workers -------------------------------------------------------------------------------

def load_bundle(data_dir, small):
  from ltbench.data import registry, sources
  if small:
    return registry.load_bundle("synthetic", synthetic_config=SMALL), "synthetic small"
  if data_dir and sources.locate("ml-1m", data_dir) is not None:
    return registry.load_bundle("ml-1m", data_dir=data_dir, download=False), "ml-1m"
  return (registry.load_bundle("synthetic", synthetic_config=SYNTHETIC_ML1M),
          "synthetic ML-1M-sized")


def best_of(fn, repeats):
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return min(times)


def self_is_current(train_lib) -> bool:
  """Whether the imported ltbench is this checkout's API (not the baseline's)."""
  return hasattr(train_lib, "init_state")


class LtbenchProgram:
  """ltbench's jitted, vmapped epoch function for (method, seeds, steps). Works against the
  current API and the baseline's (which had no traced hyper-parameters)."""

  def __init__(self, bundle, data, method_name, num_seeds, num_steps, batch_size):
    import jax
    import jax.numpy as jnp
    from ltbench import methods, train as train_lib
    from ltbench.methods.baselines import ModelConfig
    self.jax, self.jnp, self.data, self.bundle = jax, jnp, data, bundle
    model_cfg = ModelConfig(embed_dim=64, sizes=(256, 128, 64), dropout=0.1)
    train_cfg = train_lib.TrainConfig(batch_size=batch_size)
    # "cdn" is the model the baseline had (each expert one layer of 64, Appendix B.3), so the
    # two are the same computation; "cdn_budget" is today's default (experts sized to the
    # backbone's item-tower budget, §3.3), timed by this checkout only.
    options = {}
    if method_name == "cdn" and self_is_current(train_lib):
      options = {"expert_sizes": (64,)}
    elif method_name == "cdn_budget":
      method_name, options = "cdn", {"expert_sizes": "budget"}
    self.method = methods.build(method_name, bundle, model_cfg, train_cfg, **options)
    self.keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    self.num_steps, self.batch_size = num_steps, batch_size
    self.current_api = self_is_current(train_lib)
    if self.current_api:
      self.tx = train_lib.ADAM
      self.state = train_lib.init_state(self.method, self.keys, data, 1e-3)
      self.hyper = train_lib.hyper_values(self.method, 0.0)
      fn = train_lib.make_epoch_fn(self.method, self.tx, num_steps, batch_size)
      self.epoch_fn = lambda st, e: fn(st, self.keys, data, e, self.hyper)
    else:
      import optax
      self.tx = optax.adam(1e-3)
      params = jax.vmap(self.method.init, in_axes=(0, None))(self.keys, data)
      self.state = train_lib.TrainState(params, jax.vmap(self.tx.init)(params))
      fn = train_lib.make_epoch_fn(self.method, self.tx, num_steps, batch_size)
      self.epoch_fn = lambda st, e: fn(st, self.keys, data, e)
    full = data["train_user"].shape[0] // batch_size
    # The per-epoch work: the sampler draws a full epoch (permutation or pool) each call.
    self.sample_fn = jax.jit(jax.vmap(
        lambda k, e: self.method.sample(k, data, e, full, batch_size), in_axes=(0, None)))
    self.epoch = 0
    t0 = time.perf_counter()
    self.call()
    jax.block_until_ready(self.sample_fn(self.keys, jnp.int32(0)))
    self.compile_s = time.perf_counter() - t0

  def call(self):
    self.epoch += 1
    self.state, loss = self.epoch_fn(self.state, self.jnp.int32(self.epoch))
    self.jax.block_until_ready(loss)

  def sample(self):
    self.jax.block_until_ready(self.sample_fn(self.keys, self.jnp.int32(1)))

  def phases(self, repeats):
    """Seconds of one step's parts, each jitted alone (current API only)."""
    if not self.current_api:
      return {}
    import optax
    jax, jnp, method = self.jax, self.jnp, self.method
    data = {**self.data, "hyper": self.hyper}
    epoch = jnp.int32(1)
    batch_S = jax.tree.map(lambda x: x[:, 0], self.sample_fn(self.keys, epoch))
    step_keys = self.keys
    params = self.state.params
    vm = lambda f: jax.jit(jax.vmap(f))  # noqa: E731

    def loss(p, b, k):
      return method.loss(p, b, data, k, epoch)[0]

    forward = vm(loss)
    fwd_bwd = vm(jax.value_and_grad(loss))
    _, grads = fwd_bwd(params, batch_S, step_keys)

    def opt_step(g, o, p):
      updates, o = self.tx.update(g, o, p)
      return optax.apply_updates(p, updates), o

    optimiser = vm(opt_step)
    timed = {
        "forward": lambda: jax.block_until_ready(forward(params, batch_S, step_keys)),
        "forward_backward": lambda: jax.block_until_ready(fwd_bwd(params, batch_S, step_keys)),
        "optimiser": lambda: jax.block_until_ready(optimiser(grads, self.state.opt_state, params)),
    }
    if hasattr(method, "embed"):  # the two-tower: both towers' forward pass alone
      def towers(p, b, k):
        return method.embed(p, data, data["train_user"][b], k)
      towers_fn = vm(towers)
      timed["towers"] = lambda: jax.block_until_ready(towers_fn(params, batch_S, step_keys))
    for f in timed.values():
      f()  # compile
    out = {name: best_of(f, repeats) for name, f in timed.items()}
    out["backward"] = out["forward_backward"] - out["forward"]
    if "towers" in out:
      out["logits_softmax"] = out["forward"] - out["towers"]
    from ltbench.harness import runner
    evaluate = lambda: runner.evaluate_split(method, params, self.data, self.bundle,  # noqa: E731
                                             "test", (50,))
    evaluate()
    out["evaluation_all_test_users"] = best_of(evaluate, 2)
    out["step_gflop"] = step_flops(fwd_bwd, params, batch_S, step_keys) / 1e9
    return out


def step_flops(fn, *args) -> float:
  """XLA's own FLOP count of one compiled (forward + backward) step."""
  cost = fn.lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan")))


def matmul_gflops(repeats=5) -> dict[str, float]:
  """This machine's float32 matrix-multiply rate through XLA (GFLOP/s, best of `repeats`), at
  a square size and at the two-tower's largest shapes: the ceiling any training step built
  from these products can reach."""
  import jax
  import jax.numpy as jnp
  shapes = {"1024x1024x1024": (1024, 1024, 1024), "logits 1024x64x3706": (1024, 64, 3706),
            "item layer 3706x193x256": (3706, 193, 256)}
  out = {}
  for name, (m, k, n) in shapes.items():
    a, b = jnp.ones((m, k)), jnp.ones((k, n))
    f = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(f(a, b))
    reps = max(1, int(2e9 // (2 * m * k * n)))
    def run():
      for _ in range(reps):
        c = f(a, b)
      jax.block_until_ready(c)
    out[name] = round(2 * m * k * n * reps / best_of(run, repeats) / 1e9, 1)
  return out


class ReferenceProgram:
  def __init__(self, bundle, data, method_name, num_seeds, num_steps, batch_size):
    import jax
    sys.path.insert(0, str(HERE))
    import reference_step
    if method_name != "two_tower":
      raise ValueError("the reference implements the two-tower only")
    self.jax = jax
    self.state, self.epoch_fn, self.sample_fn, self.keys = reference_step.build(
        bundle, data, num_seeds, num_steps, batch_size)
    t0 = time.perf_counter()
    self.call()
    self.sample()
    self.compile_s = time.perf_counter() - t0

  def call(self):
    self.keys = self.jax.vmap(lambda k: self.jax.random.fold_in(k, 1))(self.keys)
    self.state, loss = self.epoch_fn(self.state, self.keys)
    self.jax.block_until_ready(loss)

  def sample(self):
    self.jax.block_until_ready(self.sample_fn(self.keys))

  def phases(self, repeats):
    return {}


class TorchProgram:
  def __init__(self, bundle, data, method_name, num_seeds, num_steps, batch_size):
    sys.path.insert(0, str(HERE))
    import torch_step
    if method_name != "two_tower" or num_seeds != 1:
      raise ValueError("the PyTorch peer runs the two-tower with one seed")
    self.step, self.sample_fn = torch_step.build(bundle)
    self.num_steps, self.batch_size = num_steps, batch_size
    t0 = time.perf_counter()
    self.call()
    self.compile_s = time.perf_counter() - t0

  def call(self):
    order = self.sample_fn()
    for s in range(self.num_steps):
      loss = self.step(order[s * self.batch_size:(s + 1) * self.batch_size])
    float(loss)

  def sample(self):
    self.sample_fn()

  def phases(self, repeats):
    return {}


PROGRAMS = {"ltbench": LtbenchProgram, "baseline": LtbenchProgram,
            "reference": ReferenceProgram, "torch": TorchProgram}


def worker(kind, data_dir, small):
  """Serves JSON requests on stdin, one reply line each on stdout."""
  import ltbench
  bundle, source = load_bundle(data_dir, small)
  data = bundle.device_arrays()
  print(json.dumps({"ready": True, "source": source, "bundle": bundle.summary(),
                    "ltbench_path": str(pathlib.Path(ltbench.__file__).parent)}), flush=True)
  programs = {}
  for line in sys.stdin:
    req = json.loads(line)
    if req["cmd"] == "quit":
      break
    if req["cmd"] == "matmul":  # the machine, not a program
      print(json.dumps({"gflops": matmul_gflops()}), flush=True)
      continue
    key = (req["method"], req["seeds"], req["steps"])
    try:
      if key not in programs:
        programs[key] = PROGRAMS[kind](bundle, data, *key, req["batch"])
      prog = programs[key]
      if req["cmd"] == "setup":
        reply = {"compile_s": prog.compile_s}
      elif req["cmd"] == "time":
        reply = {"call_s": best_of(prog.call, 1)}
      elif req["cmd"] == "sample":
        reply = {"sample_s": best_of(prog.sample, req.get("repeats", 3))}
      else:
        reply = {"phases_s": prog.phases(req.get("repeats", 5))}
    except Exception as e:  # reported to the parent, which skips this variant
      reply = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(reply), flush=True)


class Worker:
  def __init__(self, kind, args, pythonpath=None):
    env = dict(os.environ)
    if pythonpath:
      env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, str(HERE / "train_step.py"), "--worker", kind]
    if args.data_dir:
      cmd += ["--data-dir", str(pathlib.Path(args.data_dir).resolve())]
    if args.small:
      cmd += ["--small"]
    self.kind = kind
    self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                 text=True, cwd=pythonpath or None)
    self.info = self._read()

  def _read(self):
    line = self.proc.stdout.readline()
    if not line:
      raise RuntimeError(f"benchmark worker {self.kind!r} exited (see its stderr above)")
    return json.loads(line)

  def ask(self, **req):
    self.proc.stdin.write(json.dumps(req) + "\n")
    self.proc.stdin.flush()
    return self._read()

  def close(self):
    try:
      self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
      self.proc.stdin.flush()
    except OSError:
      pass
    self.proc.wait(timeout=60)


def baseline_checkout(rev) -> str | None:
  """A worktree of `rev` under /tmp (reused), or None outside a git checkout."""
  root = HERE.parent
  try:
    sha = subprocess.run(["git", "rev-parse", "--short=12", rev], cwd=root, check=True,
                         capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    print(f"[bench] no git revision {rev!r} here; the baseline is skipped", file=sys.stderr)
    return None
  path = pathlib.Path(f"/tmp/ltbench-baseline-{sha}")
  if not (path / "ltbench").exists():
    subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=root,
                   check=True, capture_output=True)
  return str(path)


# -- parent --------------------------------------------------------------------------------

def environment():
  import jax

  from ltbench.harness import runner
  env = runner.environment()
  try:
    model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                 if l.startswith("model name"))
  except (OSError, StopIteration):
    model = platform.processor()
  return {**env, "cpu_model": model, "jax_backend": jax.default_backend(),
          "xla_flags": os.environ.get("XLA_FLAGS", ""),
          "load_average_at_start": os.getloadavg()}


def interleaved_calls(fns: dict, rounds: int) -> dict[str, list[float]]:
  """Each function's wall time over `rounds` interleaved rounds (one call of each per
  round, in order), so that a load spike hits every variant alike."""
  calls = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      calls[name].append(best_of(fn, 1))
  return calls


def emit_record(record: dict, benchmark: str, args) -> dict:
  """Prints a benchmark's JSON record and, unless --no-record, writes it to --out."""
  print(json.dumps(record, indent=1))
  if not args.no_record:
    write_record(record, benchmark, args.out)
  return record


def write_record(record: dict, benchmark: str, out: str) -> pathlib.Path:
  """Writes a benchmark's JSON record as <out>/<benchmark>-<device>-<time>.json."""
  out_dir = pathlib.Path(out)
  out_dir.mkdir(parents=True, exist_ok=True)
  dev = record["environment"]["device"].split(":")[0]
  path = out_dir / f"{benchmark}-{dev}-{time.strftime('%Y%m%d-%H%M%S')}.json"
  path.write_text(json.dumps(record, indent=1))
  print(f"[bench] recorded {path}", file=sys.stderr)
  return path


def summarise(calls, sample_s, steps, seeds, steps_per_epoch):
  call = min(calls)
  step = max(call - sample_s, 1e-9) / steps
  epoch = sample_s + steps_per_epoch * step
  return {"seeds": seeds, "steps_per_call": steps, "call_s": [round(c, 4) for c in calls],
          "per_epoch_work_s": round(sample_s, 4), "step_ms": round(1000 * step, 2),
          "short_call_seed_steps_per_s": round(steps * seeds / call, 2),
          "real_epoch_s": round(epoch, 2),
          "real_epoch_seed_steps_per_s": round(steps_per_epoch * seeds / epoch, 2)}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data-dir", default=None, help="folder holding ml-1m/ (else synthetic)")
  p.add_argument("--methods", default="two_tower,cdn,cdn_budget",
                 help="comma-separated: two_tower, cdn (experts one layer of 64, as the "
                      "baseline), cdn_budget (experts at the item tower's budget)")
  p.add_argument("--seeds", type=int, default=5, help="vmapped seeds for seed-steps/s")
  p.add_argument("--steps", type=int, default=0,
                 help="scanned steps per timed call (default: 60 for 1 seed, 24 for S seeds)")
  p.add_argument("--rounds", type=int, default=3, help="interleaved timed calls per variant")
  p.add_argument("--batch", type=int, default=1024)
  p.add_argument("--variants", default="ltbench,baseline,reference,torch")
  p.add_argument("--baseline", default=BASELINE_REV, help="git revision of the baseline")
  p.add_argument("--small", action="store_true", help="tiny synthetic data (a smoke run)")
  p.add_argument("--no-record", action="store_true")
  p.add_argument("--out", default="results/benchmarks")
  p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.worker:
    return worker(args.worker, args.data_dir, args.small)
  if args.small:  # the tiny data set holds ~7,800 examples: keep every call inside one epoch
    args.batch, args.steps = min(args.batch, 128), args.steps or 8

  wanted = args.variants.split(",")
  workers = {}
  for kind in wanted:
    if kind == "torch":
      try:
        import torch  # noqa: F401
      except ImportError:
        print("[bench] torch is not installed; the PyTorch peer is skipped", file=sys.stderr)
        continue
    path = baseline_checkout(args.baseline) if kind == "baseline" else None
    if kind == "baseline" and path is None:
      continue
    workers[kind] = Worker(kind, args, path)
    print(f"[bench] worker {kind}: {workers[kind].info}", file=sys.stderr, flush=True)
  first = workers["ltbench"].info
  steps_per_epoch = int(first["bundle"].split(" train")[0].split("items, ")[1]) // args.batch
  results: dict = {}
  for method in args.methods.split(","):
    for seeds in sorted({1, args.seeds}):
      steps = args.steps or (60 if seeds == 1 else 24)
      req = {"method": method, "seeds": seeds, "steps": steps, "batch": args.batch}
      active = {}
      for kind, w in workers.items():
        reply = w.ask(cmd="setup", **req)
        if "error" in reply:
          print(f"[bench] {kind} {method} x{seeds}: skipped ({reply['error']})", file=sys.stderr)
          continue
        active[kind] = {"compile_s": round(reply["compile_s"], 2), "calls": []}
      for _ in range(args.rounds):  # interleaved: a load spike hits every variant alike
        for kind in active:
          active[kind]["calls"].append(workers[kind].ask(cmd="time", **req)["call_s"])
      for kind in active:
        sample_s = workers[kind].ask(cmd="sample", **req)["sample_s"]
        stats = summarise(active[kind]["calls"], sample_s, steps, seeds, steps_per_epoch)
        results.setdefault(method, {}).setdefault(str(seeds), {})[kind] = {
            "compile_s": active[kind]["compile_s"], **stats}
        print(f"[bench] {method} x{seeds} {kind:9s}: {stats['real_epoch_seed_steps_per_s']:7.2f} "
              f"real-epoch seed-steps/s (step {stats['step_ms']} ms, per-epoch work "
              f"{stats['per_epoch_work_s']} s)", file=sys.stderr, flush=True)
  phases = {}
  for method in args.methods.split(","):
    reply = workers["ltbench"].ask(cmd="phases", method=method, seeds=1,
                                   steps=args.steps or 60, batch=args.batch)
    phases_s = dict(reply.get("phases_s", {}))
    gflop = phases_s.pop("step_gflop", None)
    phases[method] = {k: round(1000 * v, 2) for k, v in phases_s.items()}
    if gflop is not None:
      phases[method]["step_gflop"] = gflop
    per_epoch = results[method]["1"]["ltbench"]
    phases[method]["sampling_per_step_amortised"] = round(
        1000 * per_epoch["per_epoch_work_s"] / steps_per_epoch, 3)
    phases[method]["whole_step_scanned"] = per_epoch["step_ms"]
    print(f"[bench] {method} phases (ms, 1 seed): {phases[method]}", file=sys.stderr)
  # The roofline: one step's FLOPs (XLA's count) at this machine's best matrix-multiply rate
  # is the fastest any implementation of this step can run here.
  rates = workers["ltbench"].ask(cmd="matmul")["gflops"]
  roofline = {"matmul_gflops": rates}
  peak = max(rates.values())
  for method, ph in phases.items():
    gflop = ph.pop("step_gflop", None)
    if gflop is None:
      continue
    floor_ms = 1000 * gflop / peak
    entry = {"step_gflop": round(gflop, 3), "floor_step_ms": round(floor_ms, 2),
             "achieved_gflops": round(gflop / (ph["whole_step_scanned"] / 1000), 1),
             "achieved_fraction_of_matmul_rate": round(floor_ms / ph["whole_step_scanned"], 2)}
    for seeds, kinds in results[method].items():  # a vmapped step is `seeds` seed-steps
      base = kinds.get("baseline")
      if base:
        entry[f"largest_possible_ratio_vs_baseline_x{seeds}"] = round(
            base["step_ms"] / int(seeds) / floor_ms, 2)
    roofline[method] = entry
    print(f"[bench] {method} roofline: {entry}", file=sys.stderr)
  for w in workers.values():
    w.close()

  def rate(method, seeds, kind):
    r = results.get(method, {}).get(str(seeds), {}).get(kind)
    return r["real_epoch_seed_steps_per_s"] if r else None

  ratios, targets = {}, {}
  for method in results:
    for seeds in results[method]:
      ours, base = rate(method, seeds, "ltbench"), rate(method, seeds, "baseline")
      if base:
        ratios[f"{method} x{seeds} vs baseline"] = round(ours / base, 2)
        targets[f"{method} x{seeds}: >= 2.5x baseline"] = ours / base >= 2.5
      ref = rate(method, seeds, "reference")
      if ref:
        ratios[f"{method} x{seeds} reference / ltbench"] = round(ref / ours, 2)
        targets[f"{method} x{seeds}: within 1.25x of the reference"] = ref / ours <= 1.25
      peer = rate(method, seeds, "torch")
      if peer:
        ratios[f"{method} x{seeds} vs torch eager"] = round(ours / peer, 2)
        targets[f"{method} x{seeds}: >= 1.5x PyTorch eager"] = ours / peer >= 1.5
  record = {"benchmark": "train_step", "data": first["source"], "bundle": first["bundle"],
            "model": "towers [256,128,64], embed 64, dropout 0.1, full softmax, Adam 1e-3",
            "batch": args.batch, "steps_per_epoch": steps_per_epoch,
            "baseline_revision": args.baseline if "baseline" in workers else None,
            "environment": environment(), "throughput": results, "ratios": ratios,
            "targets_met": targets, "phases_ms": phases, "roofline": roofline,
            "method": "interleaved rounds, best call per variant; real-epoch rate = per-epoch "
                      "work + steps_per_epoch x per-step time (see the module docstring)",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
  for kind in workers:
    if "torch" == kind:
      import torch
      record["environment"]["torch"] = torch.__version__
      record["environment"]["torch_threads"] = torch.get_num_threads()
  return emit_record(record, "train_step", args)


if __name__ == "__main__":
  main()
