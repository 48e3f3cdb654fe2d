"""The shared training loop: one jitted call per epoch, `lax.scan` over mini-batches, `vmap`
over seeds, donated state.

A method supplies four pure functions (see `Method`); the loop owns the optimiser, the
data order, progress, NaN checks and checkpoints. The Python loop runs over epochs only.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any, Callable, Protocol

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

PyTree = Any


def eta_bound(patience: int) -> str:
  """How an ETA projected to the last epoch reads: with early stopping (patience > 0) a row
  usually ends well before it, so the projection is an upper bound."""
  return "at most ~" if patience else "~"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  epochs: int = 40  # epochs of the whole run (all phases together)
  batch_size: int = 1024  # examples per step
  learning_rate: float = 1e-3  # Adam step size
  weight_decay: float = 0.0  # L2 on all parameters (added to the loss)
  log_every: int = 1  # print a progress line every this many epochs (0 = never)
  checkpoint_every: int = 0  # save an orbax checkpoint every this many epochs (0 = never)
  # Early stopping on validation (0 = off): each seed keeps its best epoch by the spec's
  # selection cell, and training ends once no seed improved for this many epochs.
  patience: int = 0


class Method(Protocol):
  """A training objective on a Bundle's device arrays (`data`). All functions are pure."""

  name: str

  def init(self, key: jax.Array, data: PyTree) -> PyTree:
    """Parameters for one seed."""

  def sample(self, key: jax.Array, data: PyTree, epoch: jax.Array, num_steps: int,
             batch_size: int) -> PyTree:
    """The epoch's mini-batches: a pytree whose leaves lead with [num_steps, batch_size]."""

  def loss(self, params: PyTree, batch: PyTree, data: PyTree, key: jax.Array,
           epoch: jax.Array) -> tuple[jax.Array, dict]:
    """Scalar loss of one mini-batch (epoch is the 0-based epoch index, traced)."""

  def serve(self, params: PyTree, data: PyTree) -> tuple[jax.Array, jax.Array]:
    """(user_UxD, item_IxD) embeddings for all users and items, as used at serving time."""

  # Optional, for multi-stage methods (e.g. NDP): at each epoch in `phase_starts` the loop
  # calls begin_phase(phase, params, key, data) -> params and starts a fresh optimiser state.
  # phase_starts: tuple[int, ...]
  # def begin_phase(self, phase: int, params: PyTree, key: jax.Array, data: PyTree) -> PyTree: ...
  # Optional: phase_lr_scale(phase) -> float multiplies the row's learning rate from that
  # phase on (curriculum learning-rate decay between stages; phase 0 is not scaled).
  # def phase_lr_scale(self, phase: int) -> float: ...
  # Optional: trial_data(key, data) -> dict of per-trial constants drawn from the trial's own
  # key (e.g. MIRec's Ω(k), Algorithm 1 line 2), merged into `data` before `sample` and
  # `loss`. It is a pure function of the trial key, recomputed inside each epoch call, so
  # every epoch of a trial sees the same values.
  # def trial_data(self, key: jax.Array, data: PyTree) -> dict: ...


def permutation_batches(key, num_examples: int, num_steps: int, batch_size: int) -> jax.Array:
  """A fresh permutation of the training examples cut into [num_steps, batch_size]."""
  return jax.random.permutation(key, num_examples)[:num_steps * batch_size].reshape(
      num_steps, batch_size)


@flax.struct.dataclass
class TrainState:
  params: PyTree
  opt_state: PyTree


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  if num_examples < batch_size:
    raise ValueError(f"batch_size {batch_size} exceeds the {num_examples} training examples; "
                     "lower --batch-size or use a larger data set")
  return num_examples // batch_size


# Adam whose step size lives in the optimiser state (`optax.inject_hyperparams`), so rows
# that differ only in learning rate share one compiled program; `opt_init` sets it.
ADAM = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)


def opt_init(tx: optax.GradientTransformation, params_S: PyTree, learning_rate: float) -> PyTree:
  """A fresh vmapped optimiser state for S seeds, with the step size set where it is a state
  value (ADAM)."""
  opt_S = jax.vmap(tx.init)(params_S)
  # optax >= 0.2.4 returns InjectStatefulHyperparamsState (not a subclass of
  # InjectHyperparamsState): test for the field, not the class.
  if "learning_rate" in getattr(opt_S, "hyperparams", {}):
    lr_S = jnp.full_like(opt_S.hyperparams["learning_rate"], learning_rate)
    opt_S = opt_S._replace(hyperparams={**opt_S.hyperparams, "learning_rate": lr_S})
  return opt_S


def init_state(method: Method, keys_S: jax.Array, data: PyTree, learning_rate: float,
               tx: optax.GradientTransformation = ADAM) -> TrainState:
  """The vmapped initial train state of S seeds (also the template of a checkpoint)."""
  params_S = jax.vmap(method.init, in_axes=(0, None))(keys_S, data)
  return TrainState(params_S, opt_init(tx, params_S, learning_rate))


def program_key(method: Method) -> Any:
  """What identifies a method's compiled program: the method itself, less the numbers it
  passes as traced `hyper` values (a method may define `program_key()` to say so)."""
  return method.program_key() if hasattr(method, "program_key") else method


def hyper_values(method: Method, weight_decay: float) -> dict[str, jax.Array]:
  """Numbers a row may change without recompiling: the L2 weight and the method's own
  `hyper()` values (e.g. CDN's γ and horizon T). They reach the loss as data["hyper"]."""
  values = {"weight_decay": weight_decay, **(method.hyper() if hasattr(method, "hyper") else {})}
  return {k: jnp.float32(v) for k, v in values.items()}


_EPOCH_FNS: dict[Any, Callable] = {}


def make_epoch_fn(method: Method, tx: optax.GradientTransformation, num_steps: int,
                  batch_size: int) -> Callable:
  """epoch(state_S, key_S, data, epoch, hyper) -> (state_S, mean_loss_S), jitted, vmapped
  over seeds and cached per program: rows that differ only in traced numbers (learning rate,
  L2 weight, `hyper` values, epoch index) reuse one compiled program.

  A method may define `update_mask(params, epoch)`, a pytree of booleans over its
  parameters: leaves where it is False get neither a gradient step nor an L2 pull (frozen).
  """
  # A custom optimiser is keyed by identity (the cached program keeps it alive).
  cache_key = (program_key(method), num_steps, batch_size, "adam" if tx is ADAM else id(tx))
  if cache_key in _EPOCH_FNS:
    return _EPOCH_FNS[cache_key]

  def loss_fn(params, batch, data, key, epoch):
    loss, aux = method.loss(params, batch, data, key, epoch)
    l2 = sum(jnp.sum(p ** 2) for p in jax.tree.leaves(params))
    return loss + data["hyper"]["weight_decay"] * l2, aux

  def one_epoch(state: TrainState, key, data, epoch, hyper):
    data = {**data, "hyper": hyper}
    if hasattr(method, "trial_data"):
      data = {**data, **method.trial_data(key, data)}
    k_sample, k_steps = jax.random.split(jax.random.fold_in(key, epoch))
    batches = method.sample(k_sample, data, epoch, num_steps, batch_size)
    mask = method.update_mask(state.params, epoch) if hasattr(method, "update_mask") else None

    def step(state, inputs):
      batch, k = inputs
      (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          state.params, batch, data, k, epoch)
      if mask is not None:
        grads = jax.tree.map(lambda g, m: jnp.where(m, g, jnp.zeros_like(g)), grads, mask)
      updates, opt_state = tx.update(grads, state.opt_state, state.params)
      if mask is not None:
        updates = jax.tree.map(lambda u, m: jnp.where(m, u, jnp.zeros_like(u)), updates, mask)
      return TrainState(optax.apply_updates(state.params, updates), opt_state), loss

    state, losses = jax.lax.scan(step, state, (batches, jax.random.split(k_steps, num_steps)))
    return state, losses.mean()

  fn = jax.jit(jax.vmap(one_epoch, in_axes=(0, 0, None, None, None)), donate_argnums=(0,))
  _EPOCH_FNS[cache_key] = fn
  return fn


_PHASE_FNS: dict[Any, Callable] = {}


def begin_phase_fn(method: Method) -> Callable:
  key = program_key(method)
  if key not in _PHASE_FNS:
    _PHASE_FNS[key] = jax.jit(jax.vmap(method.begin_phase, in_axes=(None, 0, 0, None)),
                              static_argnums=0)
  return _PHASE_FNS[key]


def shard_over_seeds(tree: PyTree, num_seeds: int) -> PyTree:
  """Places the leading (seed) axis of every leaf across the local devices when there are
  several and they divide the seed count; a no-op on one device. Trials are independent,
  so the sharded program needs no communication."""
  devices = jax.devices()
  if len(devices) == 1 or num_seeds % len(devices):
    return tree
  mesh = jax.sharding.Mesh(np.asarray(devices), ("seed",))
  return jax.device_put(tree, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed")))


def replicate(tree: PyTree) -> PyTree:
  devices = jax.devices()
  if len(devices) == 1:
    return tree
  mesh = jax.sharding.Mesh(np.asarray(devices), ("seed",))
  return jax.device_put(tree, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))


def duration(seconds: float) -> str:
  """A short human duration: 45s, 3m05s, 2h14m."""
  seconds = max(0, int(round(seconds)))
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclasses.dataclass
class TrainResult:
  params: PyTree  # leading seed axis
  losses: np.ndarray  # [S, epochs] mean training loss per epoch
  failed: dict[int, str]  # seed index -> message (NaN loss)
  seconds: float


def train(method: Method, data: PyTree, num_examples: int, keys_S: jax.Array,
          cfg: TrainConfig, label: str = "", seeds: list[int] | None = None,
          on_epoch: Callable[[int, TrainState, np.ndarray], None] | None = None,
          state: TrainState | None = None, start_epoch: int = 0,
          tx: optax.GradientTransformation | None = None,
          progress: Callable[[float], str] | None = None) -> TrainResult:
  """Trains S seeds of `method` as one program for cfg.epochs epochs.

  A seed whose loss becomes NaN is marked failed (message names row, seed and epoch) and
  the others go on; `on_epoch(epoch, state, losses_S)` is called after each epoch (for
  checkpoints, validation curves), and training ends early when it returns True. `state`/`start_epoch` resume from a checkpoint. Each progress line shows
  the row's ETA; `progress(row_seconds_left)` may append more (the runner adds the spec's).
  """
  num_seeds = keys_S.shape[0]
  seeds = list(range(num_seeds)) if seeds is None else seeds
  tx = ADAM if tx is None else tx
  num_steps = steps_per_epoch(num_examples, cfg.batch_size)
  if state is None:
    state = init_state(method, keys_S, data, cfg.learning_rate, tx)
  if jax.device_count() > 1 and num_seeds % jax.device_count() == 0:
    state, keys_S = shard_over_seeds((state, keys_S), num_seeds)
    data = replicate(data)
  epoch_fn = make_epoch_fn(method, tx, num_steps, cfg.batch_size)
  hyper = hyper_values(method, cfg.weight_decay)
  losses = np.full((num_seeds, cfg.epochs), np.nan)
  failed: dict[int, str] = {}
  t0 = time.time()
  phase_starts = tuple(getattr(method, "phase_starts", ()))
  for epoch in range(start_epoch, cfg.epochs):
    if epoch in phase_starts:
      phase = phase_starts.index(epoch) + 1
      keys_phase = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys_S, 10_000 + phase)
      params = begin_phase_fn(method)(phase, state.params, keys_phase, data)
      scale = method.phase_lr_scale(phase) if hasattr(method, "phase_lr_scale") else 1.0
      state = TrainState(params, opt_init(tx, params, cfg.learning_rate * scale))
    state, loss_S = epoch_fn(state, keys_S, data, jnp.int32(epoch), hyper)
    loss_S = np.asarray(jax.device_get(loss_S))
    losses[:, epoch] = loss_S
    for s in np.flatnonzero(~np.isfinite(loss_S)):
      if s not in failed:
        failed[int(s)] = (f"{label}: loss became {loss_S[s]} at epoch {epoch + 1} for seed "
                          f"{seeds[s]}; this trial stops (others go on). Try a lower learning "
                          "rate.")
        print(f"[ltbench] {failed[int(s)]}", file=sys.stderr)
    if cfg.log_every and ((epoch + 1) % cfg.log_every == 0 or epoch + 1 == cfg.epochs):
      ok = [l for s, l in enumerate(loss_S) if s not in failed]
      elapsed = time.time() - t0
      rate = (epoch + 1 - start_epoch) * num_steps / max(elapsed, 1e-9)
      # The first epoch includes compilation, so early ETAs are pessimistic.
      left = elapsed / (epoch + 1 - start_epoch) * (cfg.epochs - epoch - 1)
      eta = f"; row ETA {eta_bound(cfg.patience)}{duration(left)}" if epoch + 1 < cfg.epochs else ""
      if eta and progress is not None:
        eta += progress(left)
      print(f"  {label} epoch {epoch + 1:>3}/{cfg.epochs}  loss {np.mean(ok) if ok else math.nan:.4f}"
            f"  ({elapsed:.0f}s, {rate:.0f} steps/s x {num_seeds} seeds{eta})", file=sys.stderr,
            flush=True)
    if on_epoch is not None and on_epoch(epoch, state, loss_S) is True:
      break
    if len(failed) == num_seeds:
      break
  jax.block_until_ready(state.params)
  return TrainResult(state.params, losses, failed, time.time() - t0)
