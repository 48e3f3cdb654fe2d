"""Runs a table spec: rows × seeds as vmapped trials, persisted one JSON line per finished
trial, resumable, with orbax checkpoints for long trials and a report at the end."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import ltbench
from ltbench import evaluate, methods
from ltbench.data import registry
from ltbench.data.bundle import Bundle
from ltbench.data.periods import PeriodStream
from ltbench.data.sequences import SequenceData
from ltbench.harness import report, store
from ltbench.harness.spec import Row, TableSpec, check_seeds, resolve_row, row_spec
from ltbench.train import TrainState, duration, eta_bound, init_state, program_key, train


# -- metadata ----------------------------------------------------------------------------

def git_commit() -> str:
  """The source's commit (with "-dirty" for uncommitted changes to tracked files); a copy
  without its .git folder (a container image, a tarball) can name it in
  $LTBENCH_GIT_COMMIT, else "unknown"."""
  here = pathlib.Path(__file__).resolve().parent
  fallback = os.environ.get("LTBENCH_GIT_COMMIT", "unknown")
  try:
    out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True,
                         text=True, timeout=5)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else fallback
  except (OSError, subprocess.SubprocessError):
    return fallback


def environment() -> dict[str, Any]:
  import flax
  import optax
  dev = jax.devices()[0]
  return {"ltbench": ltbench.__version__, "jax": jax.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "numpy": np.__version__, "python": platform.python_version(),
          "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')} x{jax.device_count()}",
          "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
          "git_commit": git_commit()}


def is_sequences(bundle) -> bool:
  """Whether the spec's data are sequences (IDW protocol) rather than a Bundle."""
  return isinstance(bundle, SequenceData)


def is_periods(bundle) -> bool:
  """Whether the spec's data are a period stream (SML protocol, `methods.sml`)."""
  return isinstance(bundle, PeriodStream)


def num_examples(bundle) -> int:
  """Training examples per epoch: interactions of a Bundle, targets of a SequenceData."""
  return int(bundle.train_row_E.shape[0]) if is_sequences(bundle) else bundle.num_train


def protocol_text(spec: TableSpec, bundle) -> str:
  if is_periods(bundle):
    return (f"period stream {bundle.name}: the model after period t-1 is tested on period t's "
            f"rows ({bundle.meta.get('protocol')}); metrics per tested period "
            f"{bundle.first_test}..{bundle.num_periods - 1}, then their mean")
  if is_sequences(bundle):
    fraction = bundle.meta.get("sequence_config", {}).get("head_fraction", 0)
    head = f"head = top {100 * fraction:g}% items by training-target frequency"
    if bundle.negatives_SxN is None:
      return (f"{bundle.meta.get('split', 'sequences')}; each sequence's target ranked against "
              f"every other item (max over the M user vectors); {head}")
    return (f"{bundle.meta.get('split', 'sequences')}; each sequence's target ranked against "
            f"{bundle.negatives_SxN.shape[1]} fixed sampled negatives the user never interacted "
            f"with (max over the M user vectors); {head}")
  return (f"{bundle.meta.get('split')}; full ranking over all {bundle.num_items} items with the "
          f"user's train and validation items excluded; head = top "
          f"{100 * bundle.meta.get('head_fraction', 0):g}% items by train frequency")


# -- trial store -------------------------------------------------------------------------

class TrialStore:
  """Append-only JSON-lines file of finished (or failed) trials (see `store`: line-safe
  appends; a reader that skips and reports bad lines and counts each trial once)."""

  def __init__(self, path: pathlib.Path):
    self.path = pathlib.Path(path)

  def load(self, warn: bool = True) -> list[dict]:
    """The trial records; bad lines and duplicates are reported on stderr when `warn`."""
    return store.read_trials(self.path, report=warn)[0]

  def append(self, record: dict) -> None:
    self.path.parent.mkdir(parents=True, exist_ok=True)
    store.append_line(self.path, record)


def reusable_trials(out_root: pathlib.Path, target: TrialStore, key: str, seeds: list[int],
                    cells=(), needs=(), needs_extras=()) -> dict[int, dict]:
  """Finished trials of the same configuration (same config key: method, options, training,
  model, data and protocol) in other specs' stores under out_root, by seed (the first found
  in path order). A trial evaluated at other cut-offs (its test metrics lack one of `cells`,
  e.g. Recall@10 from a spec that reports @50 only) or lacking a record field in `needs`
  (e.g. "slice_loss_per_epoch" for a spec with `record_slice_losses`) or an extras key in
  `needs_extras` does not count."""
  if not seeds or not out_root.exists():
    return {}
  found: dict[int, dict] = {}
  for path in sorted(out_root.glob("**/trials.jsonl")):
    if path.resolve() == target.path.resolve():
      continue
    for t in TrialStore(path).load(warn=False):
      if (t["config"] == key and t["status"] == "ok" and t["seed"] in seeds
          and all(c in t.get("test", {}) for c in cells) and all(f in t for f in needs)
          and all(k in t.get("extras", {}) for k in needs_extras)):
        found.setdefault(t["seed"], t)
  return found


def reuse_trials(out_root: pathlib.Path, target: TrialStore, row_name: str, key: str,
                 seeds: list[int], cells=(), needs=(), needs_extras=()) -> list[int]:
  """Copies the `reusable_trials` of `seeds` into `target` under `row_name`, so a row shared
  between tables (e.g. CDN in Tables 2, 4, 5) trains once. Returns the seeds reused."""
  found = reusable_trials(out_root, target, key, seeds, cells, needs, needs_extras)
  for seed in sorted(found):
    t = found[seed]
    target.append({**t, "reused_from": f"{t['spec']}:{t['row']}", "row": row_name})
  return sorted(found)


def config_key(spec: TableSpec, row: Row, bundle: Bundle) -> str:
  """Hash of everything that changes a trial's result (not seeds, logging or checkpoints)."""
  _, train, model = resolve_row(spec, row)
  train_cfg = {k: v for k, v in dataclasses.asdict(train).items()
               if k not in ("log_every", "checkpoint_every")}
  if not train_cfg.get("patience"):  # keys of rows without early stopping stay as they were
    train_cfg.pop("patience", None)
  else:
    train_cfg["select_cell"] = spec.select_cell  # the early-stopping metric
  src = {"method": row.method, "params": row.params, "train": train_cfg,
         "model": dataclasses.asdict(model), "dataset": spec.dataset,
         "checksum": bundle.meta.get("checksum"), "split": bundle.meta.get("split"),
         "head": bundle.meta.get("head_fraction"), "data_options": spec.data_options,
         "protocol": spec.protocol}
  if spec.data_protocol != "interactions":
    src.update(data_protocol=spec.data_protocol, sequence_options=spec.sequence_options,
               model_type=type(model).__name__)
  if spec.data_protocol == "periods":  # period rows: their defaults key the configuration
    from ltbench.methods import sml
    src["resolved"] = dataclasses.asdict(sml.make_config(row.method, resolve_row(spec, row)[0]))
    src["period_meta"] = {k: bundle.meta.get(k) for k in ("period_config", "protocol")}
  resolved = methods.resolved_options(row.method, resolve_row(spec, row)[0])
  if resolved is not None:  # CDN-family rows: their defaults are part of the configuration
    src["resolved"] = resolved
  return hashlib.sha256(json.dumps(src, sort_keys=True, default=str).encode()).hexdigest()[:12]


def training_key(spec: TableSpec, row: Row, bundle: Bundle) -> str | None:
  """The config key of `row` without its serving-only options (`methods.serving_only_params`),
  or None when it has none. Rows of one spec with the same training key train once and are
  each evaluated with their own serving (e.g. MIRec rows differing only in λ_p); their trial
  records are the ones separate runs would write. Rows with early stopping never share
  (their best epoch depends on the serving)."""
  serving = set(methods.serving_only_params(row.method)) & set(row.params)
  if not serving or resolve_row(spec, row)[1].patience:
    return None
  trained = dataclasses.replace(row, params={k: v for k, v in row.params.items()
                                             if k not in serving})
  return config_key(spec, trained, bundle)


def pretrain_key(spec: TableSpec, row: Row, bundle) -> str:
  """The config key of an IDW row without the schedule fields pre-training never reads
  (`idw.AFTER_PRETRAIN`: η, m and the later phases' lengths). IDW rows with the same
  pre-training key and seeds pre-train identically (Figure 7's η and m sweep, Figure 8's
  calibration ablation), so the first to finish pre-training leaves a snapshot of that
  point and the others start from it, exactly as a resume from their own checkpoint would."""
  from ltbench.methods import idw
  kept = {k: v for k, v in row.params.items() if k not in idw.AFTER_PRETRAIN}
  return config_key(spec, dataclasses.replace(row, params=kept), bundle)


# -- checkpoints -------------------------------------------------------------------------

class Checkpointer:
  """Checkpoints of one row's pending seeds: an orbax checkpoint of the vmapped device state
  (a pytree: train state, early-stopping copy) and, beside it, the host-side progress of the
  same epoch as numpy arrays (losses, validation curves, early-stopping counters), so a
  resumed row ends exactly as an uninterrupted one would."""

  def __init__(self, directory: pathlib.Path, every: int):
    self.every = every
    self.directory = pathlib.Path(directory).resolve()
    self._manager = None

  @property
  def manager(self):
    if self._manager is None:
      import orbax.checkpoint as ocp
      self._manager = ocp.CheckpointManager(
          self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True))
    return self._manager

  def _host_path(self, step: int) -> pathlib.Path:
    return self.directory / f"host-{step}.npz"

  def restore(self, template) -> tuple[Any, dict[str, np.ndarray], int] | None:
    """(tree, host arrays, next epoch) of the latest checkpoint, or None when there is none
    or it cannot be read (an older layout, a save cut short): the row then starts again."""
    if not self.every or not self.directory.exists():
      return None
    import orbax.checkpoint as ocp
    step = self.manager.latest_step()
    if step is None:
      return None
    try:
      with np.load(self._host_path(step)) as f:
        host = {k: f[k] for k in f.files}
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
      tree = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # noqa: BLE001 (orbax raises many kinds; none is worth a crash)
      print(f"[ltbench]   ignoring the unreadable checkpoint {self.directory} "
            f"({type(e).__name__}); the row starts again", file=sys.stderr)
      return None
    return tree, host, step + 1

  def due(self, epoch: int, last: bool) -> bool:
    return bool(self.every) and (epoch + 1) % self.every == 0 and not last

  def save(self, epoch: int, tree, host: dict[str, np.ndarray]) -> None:
    """Saves `tree` (orbax) and `host` as the state after `epoch`; the host file is
    written first and old ones removed after, so a restore always finds its pair."""
    import orbax.checkpoint as ocp
    latest = self.manager.latest_step()
    if latest is not None and epoch <= latest:  # nothing new since (an empty phase)
      return
    self.directory.mkdir(parents=True, exist_ok=True)
    tmp = self.directory / f".host-{epoch}.tmp.npz"
    np.savez(tmp, **host)
    os.replace(tmp, self._host_path(epoch))
    self.manager.save(epoch, args=ocp.args.StandardSave(tree), force=True)
    self.manager.wait_until_finished()
    for old in self.directory.glob("host-*.npz"):
      if old != self._host_path(epoch):
        old.unlink(missing_ok=True)

  def clear(self) -> None:
    if self._manager is not None:
      self._manager.close()
      self._manager = None
    shutil.rmtree(self.directory, ignore_errors=True)


# -- evaluation --------------------------------------------------------------------------

_SERVE_FNS: dict = {}


def serve_fn(method, part: str | None = None):
  """The jitted, seed-vmapped serving function of a method, compiled once per program
  (and per part, "valid" or "test", for sequence methods, which serve one example each)."""
  # A method may serve differently from how it trains (IDW's post-hoc τ): `serve_key()`.
  serve_key = method.serve_key() if hasattr(method, "serve_key") else None
  key = (program_key(method), serve_key, part)
  if key not in _SERVE_FNS:
    serve = method.serve if part is None else functools.partial(method.serve, part=part)
    _SERVE_FNS[key] = jax.jit(jax.vmap(serve, in_axes=(0, None)))
  return _SERVE_FNS[key]


def target_slices(bundle: Bundle, targets) -> dict[str, np.ndarray]:
  """The overall / head / tail masks of evaluation examples, by their target item."""
  head = bundle.head_mask[targets]
  return {"overall": np.ones_like(head), "head": head, "tail": ~head}


def evaluate_splits(method, params_S, data, bundle: Bundle, ks, splits=("test", "valid"),
                    chunk_size=1024, served=None) -> dict[str, dict[str, np.ndarray]]:
  """Per-seed metrics (percent) by slice for each split, from one serving pass (`served`,
  the (user_SxUxD, item_SxIxD) of `serve_fn`, when the caller already has it)."""
  if is_sequences(bundle):
    return _evaluate_sequences(method, params_S, data, bundle, ks, splits, chunk_size)
  user_SxUxD, item_SxIxD = serve_fn(method)(params_S, data) if served is None else served
  out = {}
  for split in splits:
    if split == "valid":
      users, targets = bundle.valid_user, bundle.valid_item
    else:
      users, targets = bundle.test_user, bundle.test_item
    indptr, indices = bundle.seen_csr(include_valid=(split == "test"))
    ranks_SxU, ties_SxU = evaluate.rank_full(
        user_SxUxD[:, jnp.asarray(users)], item_SxIxD, targets,
        exclude=(indptr, indices, users), chunk_size=chunk_size, with_ties=True)
    metrics = evaluate.metrics_from_ranks(ranks_SxU, ks, target_slices(bundle, targets),
                                          ties_SxU)
    out[split] = {f"{s}/{m}": v for (s, m), v in metrics.items()}
  return out


def _evaluate_sequences(method, params_S, data, seq_data: SequenceData, ks, splits,
                        chunk_size) -> dict[str, dict[str, np.ndarray]]:
  from ltbench.methods.sequential import rank_eval
  out = {}
  for split in splits:
    user_SxUxMxD, item_SxIxD = serve_fn(method, split)(params_S, data)
    ranks_SxU, ties_SxU = rank_eval(user_SxUxMxD, item_SxIxD, seq_data, split, chunk_size)
    metrics = evaluate.metrics_from_ranks(ranks_SxU, ks, seq_data.slices(split), ties_SxU)
    out[split] = {f"{s}/{m}": v for (s, m), v in metrics.items()}
  return out


def chance_levels(bundle, ks) -> dict[str, float]:
  """Test-split HR/NDCG (percent) of a uniformly random ranking under the same exclusions."""
  if is_periods(bundle):  # sampled: K + 1 candidates; full ranking: about the catalogue
    n = bundle.test_user_M.shape[0]
    cands = bundle.num_items if bundle.negatives_MxK is None else bundle.negatives_MxK.shape[1] + 1
    levels = evaluate.chance_metrics(np.full(n, cands), ks, {"overall": np.ones(n, bool)})
    return {f"{s}/{m}": v for (s, m), v in levels.items()}
  if is_sequences(bundle):
    n = bundle.num_sequences
    cands = bundle.num_items if bundle.negatives_SxN is None else bundle.negatives_SxN.shape[1] + 1
    levels = evaluate.chance_metrics(np.full(n, cands), ks, bundle.slices("test"))
    return {f"{s}/{m}": v for (s, m), v in levels.items()}
  indptr, indices = bundle.seen_csr(include_valid=True)
  owner = np.repeat(np.arange(bundle.num_users), np.diff(indptr))
  pairs = np.unique(owner.astype(np.int64) * bundle.num_items + indices)
  seen_U = np.bincount(pairs // bundle.num_items, minlength=bundle.num_users)
  levels = evaluate.chance_metrics(bundle.num_items - seen_U[bundle.test_user], ks,
                                   target_slices(bundle, bundle.test_item))
  return {f"{s}/{m}": v for (s, m), v in levels.items()}


@functools.partial(jax.jit, static_argnames="chunk")
def slice_cross_entropy(user_SxUxD, item_SxIxD, users_N, items_N, head_N, chunk: int = 512
                        ) -> dict[str, jax.Array]:
  """Per seed, the mean softmax cross-entropy over all items, logsumexp(u·V) − u·v_i, of the
  examples (users_N, items_N) of each slice: "overall", "head" (head_N) and "tail"; NaN for
  an empty slice. The rows go through `chunk` at a time (the logits are [S, chunk, I])."""
  n = users_N.shape[0]
  pad = (-n) % chunk
  users_CxK = jnp.pad(users_N, (0, pad)).reshape(-1, chunk)
  items_CxK = jnp.pad(items_N, (0, pad)).reshape(-1, chunk)

  def per_chunk(inputs):
    users_K, items_K = inputs

    def one_seed(user_UxD, item_IxD):
      logits_KxI = user_UxD[users_K] @ item_IxD.T
      target_K = jnp.take_along_axis(logits_KxI, items_K[:, None], axis=1)[:, 0]
      return jax.nn.logsumexp(logits_KxI, axis=1) - target_K

    return jax.vmap(one_seed)(user_SxUxD, item_SxIxD)

  ce_CxSxK = jax.lax.map(per_chunk, (users_CxK, items_CxK))
  ce_SxN = jnp.moveaxis(ce_CxSxK, 1, 0).reshape(user_SxUxD.shape[0], -1)[:, :n]
  masks = {"overall": jnp.ones_like(head_N), "head": head_N, "tail": ~head_N}
  return {s: (ce_SxN * m[None]).sum(1) / m.sum() for s, m in masks.items()}


SLICE_LOSS_TRAIN_ROWS = 4096  # training interactions in SliceLosses' fixed subsample
SLICE_LOSS_SEED = 0  # its draw: the same rows for every row, seed and run of a data set


class SliceLosses:
  """The training objective's value on item slices after every epoch (MIRec Figure 5): the
  mean softmax cross-entropy over all items (`slice_cross_entropy`, the backbone's loss) of
  the served model (the row's `serve` embeddings: LogQ's raw scores, MIRec's Eq. 9 mix), on
  the head / tail / all-item ("overall") slices of a fixed uniform subsample of
  SLICE_LOSS_TRAIN_ROWS training interactions ("train/...") and of the validation
  interactions ("valid/..."). It is not the loss of the batches the row trained on: a slice
  a curriculum stage does not train still has its (rising or falling) value."""

  def __init__(self, bundle: Bundle, num_seeds: int, epochs: int,
               train_rows: int = SLICE_LOSS_TRAIN_ROWS):
    rng = np.random.default_rng(SLICE_LOSS_SEED)
    idx = np.sort(rng.choice(bundle.num_train, min(bundle.num_train, train_rows), replace=False))
    self.parts = {}
    for part, users, items in (("train", bundle.train_user[idx], bundle.train_item[idx]),
                               ("valid", bundle.valid_user, bundle.valid_item)):
      self.parts[part] = (jnp.asarray(users, jnp.int32), jnp.asarray(items, jnp.int32),
                          jnp.asarray(bundle.head_mask[items]))
    self.values = {f"{part}/{s}": np.full((num_seeds, epochs), np.nan)
                   for part in self.parts for s in ("overall", "head", "tail")}

  def record(self, epoch: int, served) -> None:
    """`served`: the (user_SxUxD, item_SxIxD) of `serve_fn` after `epoch`."""
    for part, (users_N, items_N, head_N) in self.parts.items():
      out = jax.device_get(slice_cross_entropy(*served, users_N, items_N, head_N))
      for s, v_S in out.items():
        self.values[f"{part}/{s}"][:, epoch] = v_S

  def for_seed(self, s_idx: int, epochs: int | None = None) -> dict[str, list]:
    return {c: [None if np.isnan(x) else round(float(x), 5) for x in v[s_idx][:epochs]]
            for c, v in self.values.items()}


class ValidationCurves:
  """Validation metrics of every seed after every epoch (DESIGN §6: the report flags rows
  still improving at the end), and with `spec.record_slice_losses` the `SliceLosses` from
  the same serving pass. Epochs before a resume from a checkpoint stay NaN."""

  def __init__(self, method, data, bundle: Bundle, spec: TableSpec, num_seeds: int,
               epochs: int):
    self.method, self.data, self.bundle, self.ks = method, data, bundle, spec.eval_ks
    self.cells = list(dict.fromkeys([*spec.cells, spec.select_cell]))
    self.values = {c: np.full((num_seeds, epochs), np.nan) for c in self.cells}
    self.slice_losses = (SliceLosses(bundle, num_seeds, epochs) if spec.record_slice_losses
                         else None)

  def record(self, epoch: int, params_S) -> None:
    served = None
    if self.slice_losses is not None:
      served = serve_fn(self.method)(params_S, self.data)
      self.slice_losses.record(epoch, served)
    valid = evaluate_splits(self.method, params_S, self.data, self.bundle, self.ks, ("valid",),
                            served=served)
    for c in self.cells:
      self.values[c][:, epoch] = valid["valid"][c]

  def host_state(self, prefix: str) -> dict[str, np.ndarray]:
    """The curves so far as arrays for a checkpoint (`load_host_state` puts them back)."""
    out = {f"{prefix}{c}": v for c, v in self.values.items()}
    if self.slice_losses is not None:
      out.update({f"{prefix}slice:{c}": v for c, v in self.slice_losses.values.items()})
    return out

  def load_host_state(self, host: dict[str, np.ndarray], prefix: str) -> None:
    """Puts back `host_state`'s curves. A shared IDW pre-training snapshot may come from a
    row with more or fewer epochs after pre-training: the leading epochs are copied."""
    def put(dst_SxE, src_SxE):
      width = min(dst_SxE.shape[1], src_SxE.shape[1])
      dst_SxE[:, :width] = src_SxE[:, :width]
    for c in self.values:
      put(self.values[c], host[f"{prefix}{c}"])
    if self.slice_losses is not None:
      for c in self.slice_losses.values:
        put(self.slice_losses.values[c], host[f"{prefix}slice:{c}"])

  def for_seed(self, s_idx: int, epochs: int | None = None) -> dict[str, list]:
    """The seed's curves over the first `epochs` epochs (all by default; fewer when a row
    stopped early)."""
    return {c: [None if np.isnan(x) else round(float(x), 4) for x in v[s_idx][:epochs]]
            for c, v in self.values.items()}


class BestEpoch:
  """Early stopping on validation, per seed, inside one vmapped program: each seed keeps a
  copy of its parameters at its best epoch by `cell` so far, and `update` says when every
  seed has gone `patience` epochs without improving. `reset` starts a new phase (IDW)."""

  def __init__(self, cell: str, patience: int):
    self.cell, self.patience = cell, patience
    self.epochs: list[np.ndarray] = []  # per phase: the best epoch of each seed
    self.reset()

  def reset(self) -> None:
    self.best_S = self.params = self.stale_S = self.epoch_S = None

  def update(self, epoch: int, valid: dict[str, np.ndarray], params_S) -> bool:
    from ltbench.methods.idw import keep_stopped
    score_S = np.nan_to_num(np.asarray(valid[self.cell], np.float64), nan=-np.inf)
    if self.best_S is None:
      improved = np.ones_like(score_S, bool)
      self.params = jax.tree.map(jnp.copy, params_S)  # the epoch function donates its input
      self.best_S, self.stale_S = score_S, np.zeros(score_S.shape, np.int64)
      self.epoch_S = np.full(score_S.shape, epoch)
    else:
      improved = score_S > self.best_S
      if improved.any():
        self.params = keep_stopped(params_S, self.params, improved)
      self.best_S = np.where(improved, score_S, self.best_S)
      self.stale_S = np.where(improved, 0, self.stale_S + 1)
      self.epoch_S = np.where(improved, epoch, self.epoch_S)
    return bool(self.patience) and bool((self.stale_S >= self.patience).all())

  def finish(self, params_S):
    """Each seed's best parameters of the phase (or `params_S` if nothing was recorded)."""
    if self.params is None:
      return params_S
    self.epochs.append(self.epoch_S)
    best = self.params
    self.reset()
    return best

  _COUNTERS = ("best_S", "stale_S", "epoch_S")

  def host_state(self, num_seeds: int) -> dict[str, np.ndarray]:
    """Everything but the parameter copy (`params`, saved with the device state) as arrays
    for a checkpoint; `load_host_state` puts it back."""
    out = {"best.epochs": (np.stack(self.epochs) if self.epochs
                           else np.zeros((0, num_seeds), np.int64))}
    if self.best_S is not None:
      out.update({f"best.{k}": getattr(self, k) for k in self._COUNTERS})
    return out

  def load_host_state(self, host: dict[str, np.ndarray], params) -> None:
    self.epochs = list(host["best.epochs"])
    if "best.best_S" in host:
      for k in self._COUNTERS:
        setattr(self, k, host[f"best.{k}"])
      self.params = params
    else:
      self.reset()


def evaluate_split(method, params_S, data, bundle: Bundle, split: str, ks, chunk_size=1024
                   ) -> dict[str, np.ndarray]:
  return evaluate_splits(method, params_S, data, bundle, ks, (split,), chunk_size)[split]


# -- running a spec ----------------------------------------------------------------------

def slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def load_spec_bundle(spec: TableSpec, data_dir: str | None = None, download: bool = True,
                     allow_modified_data: bool = False) -> Bundle | SequenceData:
  if spec.data_protocol == "periods":
    from ltbench.data.periods import load_period_stream
    return load_period_stream(spec.dataset, spec.data_options, data_dir, allow_modified_data)
  if spec.data_protocol == "sequences":
    return registry.load_sequences(spec.dataset, synthetic_config=spec.data_options or None,
                                   sequence_config=spec.sequence_options or None,
                                   head_fraction=spec.head_fraction, data_dir=data_dir,
                                   download=download, allow_modified_data=allow_modified_data)
  return registry.load_bundle(spec.dataset, data_dir=data_dir, head_fraction=spec.head_fraction,
                              download=download, synthetic_config=spec.data_options or None,
                              allow_modified_data=allow_modified_data)


def catalogue_warnings(bundle: Bundle, ks) -> list[str]:
  """Warnings about metrics that the data make meaningless (a catalogue no larger than K)."""
  k = max(ks)
  if bundle.num_items <= k:
    return [f"the catalogue has only {bundle.num_items} items, not more than K = {k}: every "
            f"target ranks in the top {k}, so HR@{k} is 100 % whatever the model does. Use a "
            f"data set with more than {k} items."]
  return []


def run_spec(spec: TableSpec, seeds: list[int] | None = None, rows: list[str] | None = None,
             data_dir: str | None = None, out_root: str | os.PathLike = "results",
             download: bool = True, allow_modified_data: bool = False
             ) -> tuple[report.Table, pathlib.Path]:
  """Runs the missing trials of `spec` and writes its reports; returns (table, out_dir).

  Seeds and rows are checked, and the results folder is created, locked and probed for
  writing, before any data is loaded or trained."""
  seeds = check_seeds(spec.seeds if seeds is None else seeds)
  selected = spec.select_rows(rows)
  out_dir = pathlib.Path(out_root) / spec.out_name
  with store.folder_lock(out_dir):
    trials_path = out_dir / store.TRIALS_NAME
    store.check_appendable(trials_path)
    return _run_locked(spec, seeds, selected, data_dir, pathlib.Path(out_root), out_dir,
                       TrialStore(trials_path), download, allow_modified_data)


def report_spec(spec: TableSpec, data_dir: str | None = None,
                out_root: str | os.PathLike = "results", download: bool = True,
                allow_modified_data: bool = False) -> tuple[report.Table, pathlib.Path]:
  """Writes the reports of `spec` from the trials already on disk, training nothing (`ltbench
  report`): a long run's finished rows can be read while it goes on. Takes no lock; the
  run's own reports, written when it ends, replace these."""
  out_dir = pathlib.Path(out_root) / spec.out_name
  trials_path = out_dir / store.TRIALS_NAME
  if not trials_path.exists():
    from ltbench.errors import SpecError
    raise SpecError(f"{trials_path} does not exist: no trial of {spec.out_name} has finished "
                    "yet (or the flags select another folder; `ltbench diff` lists the "
                    "folders of a spec)")
  # A report trains nothing, so the seeds it records are those of the trials on disk (the
  # run that wrote them may have asked for fewer than the spec's default).
  trials_store = TrialStore(trials_path)
  seeds = sorted({t["seed"] for t in trials_store.load(warn=False)}) or list(spec.seeds)
  return _run_locked(spec, seeds, spec.rows, data_dir, pathlib.Path(out_root), out_dir,
                     trials_store, download, allow_modified_data, train_rows=False)


def _run_locked(spec, seeds, selected, data_dir, out_root, out_dir, trials_store, download,
                allow_modified_data, train_rows=True):
  t_load = time.time()
  bundle = load_spec_bundle(spec, data_dir, download, allow_modified_data)
  print(f"[ltbench] {spec.out_name}: {bundle.summary()} (loaded in {time.time() - t_load:.1f}s)",
        file=sys.stderr)
  if spec.record_slice_losses and (is_sequences(bundle) or is_periods(bundle)):
    from ltbench.errors import SpecError
    raise SpecError(f"{spec.id}: record_slice_losses needs interaction data (a Bundle); "
                    f"{spec.dataset} is read as {spec.data_protocol}. Turn it off for this spec.")
  warnings = catalogue_warnings(bundle, spec.ks)
  for w in warnings:
    print(f"[ltbench] WARNING: {w}", file=sys.stderr)
  data = None if is_periods(bundle) else bundle.device_arrays()
  # Rows with their own generator options (Row.data_options) get their own data, loaded once
  # per distinct option set.
  loaded = {json.dumps(spec.data_options, sort_keys=True, default=str): (bundle, data)}

  def row_data(row):
    rspec = row_spec(spec, row)
    tag = json.dumps(rspec.data_options, sort_keys=True, default=str)
    if tag not in loaded:
      b = load_spec_bundle(rspec, data_dir, download, allow_modified_data)
      print(f"[ltbench] {row.name}: {b.summary()} (data options {row.data_options})",
            file=sys.stderr)
      loaded[tag] = (b, None if is_periods(b) else b.device_arrays())
    return (rspec, *loaded[tag])

  env = environment()
  t_run = time.time()
  keys = {r.name: config_key(row_spec(spec, r), r, row_data(r)[1]) for r in spec.rows}
  # Record fields a trial must have to count here (slice losses are not part of the key).
  needs = ("slice_loss_per_epoch",) if spec.record_slice_losses else ()

  def complete(t):
    return (t["status"] == "ok" and all(f in t for f in needs)
            and all(k in t.get("extras", {}) for k in spec.needs_extras))
  finished = {(t["row"], t["config"], t["seed"]) for t in trials_store.load() if complete(t)}
  tkeys = {r.name: training_key(row_spec(spec, r), r, row_data(r)[1]) for r in selected}
  # Rows with something to train, for the spec's ETA: seeds neither on disk here nor
  # reusable from another spec's identical configuration; rows that train with an earlier
  # row of the same training key count once.
  def to_train(r):
    missing = [s for s in seeds if (r.name, keys[r.name], s) not in finished]
    return missing and set(missing) - set(reusable_trials(
        out_root, trials_store, keys[r.name], missing, spec.cells, needs, spec.needs_extras))
  todo = [r.name for r in selected if to_train(r)] if train_rows else []
  todo = [n for i, n in enumerate(todo)
          if tkeys[n] is None or tkeys[n] not in {tkeys[m] for m in todo[:i]}]

  def pending_seeds(r_idx, row):
    """The row's seeds still to train, after its own and other specs' finished trials."""
    key = keys[row.name]
    done = {t["seed"] for t in trials_store.load(warn=False)
            if t["row"] == row.name and t["config"] == key and complete(t)}
    pending = [s for s in seeds if s not in done]
    reused = reuse_trials(out_root, trials_store, row.name, key, pending, spec.cells, needs,
                          spec.needs_extras)
    if reused:
      print(f"[ltbench] row {r_idx}/{len(selected)} {row.name}: reused seeds {reused} from "
            "another spec's identical configuration", file=sys.stderr)
    return done, [s for s in pending if s not in reused]

  shared = set()  # rows already trained with an earlier row of the same training key
  for r_idx, row in enumerate(selected if train_rows else (), 1):
    if row.name in shared:
      continue
    key = keys[row.name]
    done, pending = pending_seeds(r_idx, row)
    siblings = []
    if pending and tkeys[row.name] is not None:
      for j, other in enumerate(selected[r_idx:], r_idx + 1):
        if tkeys[other.name] == tkeys[row.name] and other.name not in shared:
          if pending_seeds(j, other)[1] == pending:
            siblings.append((other, keys[other.name]))
            shared.add(other.name)
      if siblings:
        print(f"[ltbench] row {r_idx}/{len(selected)} {row.name}: trains once for "
              f"{', '.join(o.name for o, _ in siblings)} too (they differ only in serving "
              "options)", file=sys.stderr)
    if not pending:
      have = [s for s in seeds if s in done]
      if have:
        print(f"[ltbench] row {r_idx}/{len(selected)} {row.name}: seeds {have} already on "
              f"disk, skipping", file=sys.stderr)
      continue
    rows_after = len(todo) - todo.index(row.name) - 1 if row.name in todo else 0
    print(f"[ltbench] row {r_idx}/{len(selected)} {row.name}: training seeds {pending} "
          f"({'period by period' if is_periods(bundle) else f'{spec.train.epochs} epochs'}, "
          "vmapped)", file=sys.stderr, flush=True)
    t_row = time.time()
    bound = eta_bound(resolve_row(spec, row)[1].patience)

    def spec_eta(row_left_s, t_row=t_row, rows_after=rows_after, bound=bound):
      # Rows still to train after this one, each taking this row's projected time.
      if not rows_after:
        return ""
      per_row = (time.time() - t_row) + row_left_s
      return f", spec ETA {bound}{duration(row_left_s + rows_after * per_row)} ({rows_after} more " \
             f"row{'s' if rows_after > 1 else ''})"

    rspec, row_bundle, row_arrays = row_data(row)
    run_row(rspec, row, row_bundle, row_arrays, pending, key, trials_store, out_dir, env,
            spec_eta, siblings=siblings, shared_ckpt_root=out_root / "ckpt")
  trials = trials_store.load(warn=False)  # problems were reported at the start
  stale = sum(1 for t in trials if t["row"] in keys and keys[t["row"]] != t["config"])
  if stale:
    print(f"[ltbench] ignoring {stale} trial(s) in {trials_store.path} run with another "
          "configuration", file=sys.stderr)
  current = [t for t in trials if keys.get(t["row"]) == t["config"]]
  if not train_rows:
    missing = [r.name for r in spec.rows
               if not any(t["row"] == r.name and t["status"] == "ok" for t in current)]
    print(f"[ltbench] report only (nothing trained): {len(spec.rows) - len(missing)} of "
          f"{len(spec.rows)} rows have finished trials"
          + (f"; none yet for {', '.join(missing)}" if missing else ""), file=sys.stderr)
  table = report.build_table(spec, current)
  modified = bool(bundle.meta.get("data_modified"))
  meta = {**env, "spec": spec.id, "dataset": spec.dataset, "bundle_summary": bundle.summary(),
          "split": bundle.meta.get("split"), "data_checksum": bundle.meta.get("checksum"),
          "protocol_text": protocol_text(spec, bundle),
          "chance": {c: round(v, 4) for c, v in chance_levels(bundle, spec.ks).items()
                     if c in spec.cells},
          "param_counts": {r.name: row_param_counts(spec, r, *row_data(r)[1:])
                           for r in spec.rows},
          "train": dataclasses.asdict(spec.train), "data_protocol": spec.data_protocol,
          "model": dataclasses.asdict(spec.model), "seeds_requested": seeds,
          "wall_time_this_invocation_s": round(time.time() - t_run, 1),
          "trial_wall_time_s": {r: round(sum(t.get("wall_time_s") or 0 for t in current
                                             if t["row"] == r and t["status"] == "ok"), 1)
                                for r in table.seeds},
          # The fields above (device, versions, git_commit) describe this invocation; the
          # trials may have been trained elsewhere: what each row's trials record.
          "trial_devices": trial_values(current, table.seeds, "device"),
          "trial_git_commits": trial_values(current, table.seeds, "git_commit")}
  if modified:
    meta["data_modified"] = True
    meta["data_modified_files"] = bundle.meta.get("data_modified_files")
  if warnings:
    meta["warnings"] = warnings
  store.write_text_atomic(out_dir / "run.json",
                          json.dumps({"config_keys": keys, "meta": meta}, indent=1))
  write = report.write_reports(table, meta, out_dir)
  if spec.figure is not None:
    write += spec.figure(table, [t for t in current if t["status"] == "ok"], out_dir)
  print(f"[ltbench] wrote {', '.join(str(p) for p in write)}", file=sys.stderr)
  return table, out_dir


def trial_values(trials: list[dict], rows, field: str) -> dict[str, list[str]]:
  """Each row's distinct values of a trial field among its finished trials."""
  return {r: sorted({str(t.get(field)) for t in trials if t["row"] == r and t["status"] == "ok"})
          for r in rows}


_PARAM_COUNTS: dict = {}


def row_param_counts(spec: TableSpec, row: Row, bundle: Bundle, data) -> dict[str, int]:
  """`methods.param_counts` of a row (cached per compiled program and data set)."""
  options, train_cfg, model_cfg = resolve_row(spec, row)
  if is_periods(bundle):
    from ltbench.methods import sml
    return sml.param_counts(row.method, sml.make_config(row.method, options), bundle)
  method = methods.build(row.method, bundle, model_cfg, train_cfg, name=row.name, **options)
  key = (program_key(method), bundle.meta.get("checksum"))
  if key not in _PARAM_COUNTS:
    _PARAM_COUNTS[key] = methods.param_counts(method, bundle, data)
  return _PARAM_COUNTS[key]


def trial_base(spec: TableSpec, row: Row, seed: int, key: str, meta: dict, env: dict,
               wall_s: float, split=None) -> dict:
  """The fields every trial record of `row` holds, whatever its data and driver."""
  base = {"spec": spec.out_name, "row": row.name, "seed": seed, "config": key,
          "method": row.method, "params": row.params,
          "split": meta.get("split") if split is None else split,
          "data_checksum": meta.get("checksum"), "device": env["device"],
          "git_commit": env["git_commit"], "wall_time_s": round(wall_s, 2),
          "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
  if meta.get("data_modified"):
    base["data_modified"] = True
  return base


def item_silhouettes(method, params_S, item_cluster_I) -> np.ndarray:
  """[S] mean silhouette (`evaluate.mean_silhouette`) of each seed's served item vectors,
  clustered by the data's ground-truth item clusters (IDW §3.2's MS score)."""
  labels_I = jnp.asarray(item_cluster_I)
  num_clusters = int(np.max(item_cluster_I)) + 1
  item_SxIxD = jax.vmap(method.serve_items)(params_S)
  return np.asarray(jax.vmap(lambda x: evaluate.mean_silhouette(x, labels_I, num_clusters))(
      item_SxIxD))


def run_row(spec: TableSpec, row: Row, bundle, data, pending: list[int], key: str,
            trials_store: TrialStore, out_dir: pathlib.Path, env: dict,
            progress=None, siblings=(), shared_ckpt_root: pathlib.Path | None = None) -> None:
  """Trains `pending` seeds of one row as one vmapped program, evaluates them, and appends
  one trial record per seed. IDW rows (sequence data) train through `idw.run_idw`, and
  share their pre-training through snapshots under `shared_ckpt_root` (`pretrain_key`); the
  others train through `train.train`. With `TrainConfig.patience` each seed ends on its best
  validation epoch (early stopping, `BestEpoch`). `siblings` ((row, config key) pairs of
  the same training key, `training_key`) are served from the same trained parameters, with
  their own validation curves and trial records."""
  from ltbench.methods import idw
  if is_periods(bundle):
    return run_period_row(spec, row, bundle, pending, key, trials_store, env)
  options, train_cfg, model_cfg = resolve_row(spec, row)
  method = methods.build(row.method, bundle, model_cfg, train_cfg, name=row.name, **options)
  keys_S = jnp.stack([jax.random.PRNGKey(s) for s in pending])
  is_idw = isinstance(method, idw.IDWTwoTower)
  ckpt = Checkpointer(out_dir / "ckpt" / f"{slug(row.name)}-{key}-s{'_'.join(map(str, pending))}",
                      train_cfg.checkpoint_every)
  pretrain_ckpt = None  # IDW: the snapshot of the end of pre-training, shared between rows
  if is_idw and ckpt.every and not siblings and shared_ckpt_root is not None:
    pretrain_ckpt = Checkpointer(
        shared_ckpt_root / "idw-pretrain" /
        f"{pretrain_key(spec, row, bundle)}-s{'_'.join(map(str, pending))}", 1)
  t0 = time.time()
  sched = method.schedule if is_idw else None
  max_epochs = ((train_cfg.epochs if sched.pretrain_epochs is None else sched.pretrain_epochs)
                + sched.max_iterations * sched.wake_epochs +
                sched.calibration_epochs) if is_idw else train_cfg.epochs
  curves = ValidationCurves(method, data, bundle, spec, len(pending), max_epochs)
  served = [(row, key, method, curves)]  # every row evaluated from these parameters
  for sib, sib_key in siblings:
    sib_method = methods.build(sib.method, bundle, model_cfg, train_cfg, name=sib.name,
                               **resolve_row(spec, sib)[0])
    served.append((sib, sib_key, sib_method,
                   ValidationCurves(sib_method, data, bundle, spec, len(pending), max_epochs)))
  best = BestEpoch(spec.select_cell, train_cfg.patience) if train_cfg.patience else None
  silhouettes, ends = [], []  # IDW: the item embeddings' MS at each phase end (Figure 4)

  # A checkpoint: the device state and early-stopping copy (orbax), and beside them the
  # losses, every served row's validation curves and the early-stopping counters.
  # `progress`: the driver's own part (plain rows: their losses; IDW: `IDWProgress`'s).
  def save_checkpoint(epoch, state, progress: dict[str, np.ndarray], to=ckpt):
    tree = {"state": state, "best": state.params if best is None or best.params is None
            else best.params}
    host = {**progress, **(best.host_state(len(pending)) if best else {})}
    if pretrain_shared[0]:  # kept through the row's own later checkpoints
      host["pretrain_shared"] = np.bool_(True)
    for i, (*_, row_curves) in enumerate(served):
      host.update(row_curves.host_state(f"curves{i}."))
    if silhouettes:
      host.update({"silhouettes": np.stack(silhouettes), "silhouette_ends": np.asarray(ends)})
    to.save(epoch, tree, host)

  def template():
    state = (idw.init_state(method, data, keys_S, train_cfg.learning_rate) if is_idw
             else init_state(method, keys_S, data, train_cfg.learning_rate))
    return {"state": state, "best": state.params}

  state, start, resume, saved_losses = None, 0, None, None
  restored, from_pretrain = None, False
  pretrain_shared = [False]  # this row's pre-training came from a snapshot (now or before)
  if ckpt.every and ckpt.directory.exists():
    restored = ckpt.restore(template())
  if restored is None and pretrain_ckpt is not None and pretrain_ckpt.directory.exists():
    restored = pretrain_ckpt.restore(template())
    needs = served[0][3].host_state("curves0.")
    if restored is not None and not set(needs) <= set(restored[1]):
      print(f"[ltbench]   ignoring the shared pre-training {pretrain_ckpt.directory} (its "
            "validation curves lack this spec's cells); the row pre-trains itself",
            file=sys.stderr)
      restored = None
    from_pretrain = restored is not None
  if restored is not None:
    tree, host, start = restored
    state, saved_losses = tree["state"], host.get("losses")
    pretrain_shared[0] = from_pretrain or "pretrain_shared" in host
    for i, (*_, row_curves) in enumerate(served):
      row_curves.load_host_state(host, f"curves{i}.")
    if best is not None:
      best.load_host_state(host, tree["best"])
    if "silhouettes" in host:
      silhouettes.extend(host["silhouettes"])
      ends.extend(str(e) for e in host["silhouette_ends"])
    where = ""
    if is_idw:
      resume = idw.IDWProgress.from_host(state, host)
      where = (" (pre-training)" if resume.round < 0 else
               f" (after pre-training and {resume.round} wake round(s))")
    if from_pretrain:
      print(f"[ltbench]   {row.name} starts after pre-training (epoch {start}) from the "
            f"snapshot an earlier IDW row with the same pre-training left in "
            f"{pretrain_ckpt.directory}", file=sys.stderr)
    else:
      print(f"[ltbench]   resuming {row.name} from its checkpoint after epoch {start}{where}",
            file=sys.stderr)
  ran = [start]  # epochs run so far (the curves' length)

  def record(epoch, params_S) -> bool:
    for *_, row_curves in served:
      row_curves.record(epoch, params_S)
    ran[0] = epoch + 1
    if best is None:
      return False
    return best.update(epoch, {c: v[:, epoch] for c, v in curves.values.items()}, params_S)

  extras: dict[str, Any] = {}
  clusters = getattr(bundle, "item_cluster", None)  # ground-truth interests (synthetic data)
  if is_idw:
    def end_phase(state, phase):
      if best is not None:
        state = TrainState(best.finish(state.params), state.opt_state)
      if clusters is not None:
        silhouettes.append(item_silhouettes(method, state.params, clusters))
        ends.append(phase)
      return state

    def on_progress(progress):  # pre-training: every `checkpoint_every` epochs; else each
      # phase boundary (Algorithm 1 has no mid-round resume)
      if progress.round >= 0 or ckpt.due(progress.pretrain_done - 1, False):
        save_checkpoint(len(progress.phases) - 1, progress.state, progress.host_state())
      if (progress.round == 0 and pretrain_ckpt is not None
          and not pretrain_ckpt.directory.exists()):
        save_checkpoint(len(progress.phases) - 1, progress.state, progress.host_state(),
                        to=pretrain_ckpt)

    res = idw.run_idw(method, data, num_examples(bundle), keys_S, train_cfg, label=row.name,
                      on_epoch=lambda epoch, state, phase: record(epoch, state.params),
                      end_phase=end_phase if best is not None or clusters is not None
                      else None, resume=resume,
                      on_progress=on_progress if ckpt.every else None)
    params_S, losses_S = res.params, res.losses
    failed = {int(s): f"{row.name}: loss became non-finite for seed {pending[s]}; this trial "
              "is marked failed (the others go on). Try a lower learning rate."
              for s in np.flatnonzero(~np.isfinite(losses_S).all(1))}
    extras = {"idw_deltas": res.deltas.T, "idw_wake_rounds": res.wake_rounds,
              "idw_phases": np.broadcast_to(np.asarray(res.phases, object), (len(pending),
                                                                             len(res.phases)))}
    if pretrain_shared[0]:  # its wall time leaves out the pre-training
      extras["idw_pretrain_shared"] = np.ones(len(pending), bool)
    if silhouettes:
      extras["item_silhouette_per_phase"] = np.stack(silhouettes, 1)  # [S, phase ends]
      extras["item_silhouette_phases"] = np.broadcast_to(np.asarray(ends, object),
                                                         (len(pending), len(ends)))
  else:
    losses_SxE = np.full((len(pending), train_cfg.epochs), np.nan)
    if saved_losses is not None:
      losses_SxE[:, :start] = saved_losses[:, :start]

    def on_epoch(epoch, state, loss_S):
      losses_SxE[:, epoch] = loss_S
      stop = record(epoch, state.params)
      if not stop and ckpt.due(epoch, epoch + 1 == train_cfg.epochs):
        save_checkpoint(epoch, state, {"losses": losses_SxE})
      return stop

    result = train(method, data, num_examples(bundle), keys_S, train_cfg, label=row.name,
                   seeds=pending, state=state, start_epoch=start, on_epoch=on_epoch,
                   progress=progress)
    params_S = result.params if best is None else best.finish(result.params)
    losses_S, failed = result.losses[:, :ran[0]], result.failed
    losses_S[:, :start] = losses_SxE[:, :start]  # the epochs before a resume
  if best is not None and best.epochs:
    extras["best_epoch"] = np.stack(best.epochs, 1) + 1  # [S, phases], 1-based
  wall = (time.time() - t0) / len(pending)
  for out_row, out_key, out_method, out_curves in served:
    metrics = evaluate_splits(out_method, params_S, data, bundle, spec.eval_ks)
    test, valid = metrics["test"], metrics["valid"]
    row_extras = dict(extras)
    if hasattr(out_method, "trial_extras"):
      row_extras.update(out_method.trial_extras(params_S, data, bundle))
    if clusters is not None and hasattr(out_method, "serve_items"):  # IDW Figure 3g
      row_extras["item_silhouette"] = item_silhouettes(out_method, params_S, clusters)
    for s_idx, seed in enumerate(pending):
      base = trial_base(spec, out_row, seed, out_key, bundle.meta, env, wall)
      if s_idx in failed:
        trials_store.append({**base, "status": "failed", "error": failed[s_idx]})
        continue
      trial = {**base, "status": "ok",
               "test": {c: float(v[s_idx]) for c, v in test.items()},
               "valid": {c: float(v[s_idx]) for c, v in valid.items()},
               "loss_per_epoch": [round(float(x), 5) for x in losses_S[s_idx]],
               "valid_per_epoch": out_curves.for_seed(s_idx, ran[0]),
               "extras": {k: np.asarray(v[s_idx]).tolist() for k, v in row_extras.items()}}
      if out_row is not row:
        trial["trained_with"] = row.name  # the same training run, served differently
      if out_curves.slice_losses is not None:  # only specs that ask for them
        trial["slice_loss_per_epoch"] = out_curves.slice_losses.for_seed(s_idx, ran[0])
      trials_store.append(trial)
    summary = ", ".join(f"{c} {np.nanmean(test[c]):.2f}" for c in spec.cells[:2])
    print(f"[ltbench]   {out_row.name}: {summary} ({time.time() - t0:.0f}s for "
          f"{len(pending)} seeds)", file=sys.stderr)
  ckpt.clear()


def run_period_row(spec: TableSpec, row: Row, stream: PeriodStream, pending: list[int],
                   key: str, trials_store: TrialStore, env: dict) -> None:
  """A period-stream row (SML, Table 1): `sml.run_periods` over the stream for the pending
  seeds; each trial stores the mean over tested periods per cell, and the per-period
  values in extras ("periods", "per_period/<cell>")."""
  from ltbench.methods import sml
  options = resolve_row(spec, row)[0]
  try:
    cfg = sml.make_config(row.method, options)
  except (TypeError, ValueError) as e:
    from ltbench.errors import SpecError
    raise SpecError(f"{spec.id}, row {row.name!r}: {e}") from None
  keys_S = jnp.stack([jax.random.PRNGKey(s) for s in pending])
  res = sml.run_periods(row.method, stream, keys_S, cfg, ks=spec.eval_ks, seeds=pending,
                        label=row.name)
  wall = res.wall_s / len(pending)
  for s_idx, seed in enumerate(pending):
    base = trial_base(spec, row, seed, key, stream.meta, env, wall,
                      split=stream.meta.get("protocol"))
    base["test_users"] = stream.meta.get("test_users", "all")  # "returning": seen users only
    values = {c: v[s_idx] for c, v in res.metrics.items()}
    if not all(np.isfinite(v).all() for v in values.values()) or \
        not np.isfinite(res.losses[s_idx]).all():
      trials_store.append({**base, "status": "failed", "error": f"{row.name}: non-finite loss "
                           f"or metric for seed {seed}; try a lower learning rate"})
      continue
    extras = {"periods": res.periods,
              **{f"per_period/{c}": [round(float(x), 4) for x in v] for c, v in values.items()}}
    trials_store.append({**base, "status": "ok",
                         "test": {c: float(np.mean(v)) for c, v in values.items()},
                         "valid": {}, "loss_per_epoch": [round(float(x), 5)
                                                          for x in res.losses[s_idx]],
                         "valid_per_epoch": {}, "extras": extras})
  summary = ", ".join(f"{c} {np.mean(res.metrics[c]):.2f}" for c in spec.cells[:2]
                      if c in res.metrics)
  print(f"[ltbench]   {row.name}: {summary} ({res.wall_s:.0f}s for {len(pending)} seeds)",
        file=sys.stderr)


def result_folders(spec: TableSpec, out_root: pathlib.Path) -> list[tuple[str, str]]:
  """The result folders of `spec`'s table under out_root, as (folder, flags that select it
  with `ltbench diff`), e.g. ("cdn/table2-epochs3", "--epochs 3")."""
  paper, table = spec.id.split("/", 1)
  pattern = re.compile(rf"^{re.escape(table)}(?P<quick>-quick)?(?:-epochs(?P<epochs>\d+))?"
                       rf"(?:-(?P<dataset>.+))?$")
  out = []
  for folder in sorted((out_root / paper).glob(table + "*")):
    m = pattern.match(folder.name)
    if not m or not (folder / "run.json").exists():
      continue
    dataset = m["dataset"]
    if dataset is not None and dataset not in registry.DATASETS:
      continue  # e.g. a -tune folder (see `ltbench tune`)
    flags = [f for f in ("--quick" if m["quick"] else "",
                         f"--epochs {m['epochs']}" if m["epochs"] else "",
                         f"--dataset {dataset}" if dataset else "") if f]
    out.append((f"{paper}/{folder.name}", " ".join(flags)))
  return out


def load_table(spec: TableSpec, out_dir: pathlib.Path) -> report.Table:
  """The table of the trials on disk, for the configuration of the last run of this spec."""
  from ltbench.errors import ResultsError, SpecError
  run_file = out_dir / "run.json"
  command = f"ltbench run {spec.id}{' --quick' if spec.is_quick else ''}"
  if not run_file.exists():
    out_root = out_dir.parents[spec.id.count("/")]
    others = [f for f in result_folders(spec, out_root) if f[0] != spec.out_name]
    msg = (f"no results for {spec.out_name} in {out_dir}: run `{command}` first (or pass "
           f"--out)")
    if others:
      msg += (f". Results of {spec.id} that exist under {out_root}/:\n" +
              "\n".join(f"  {out_root}/{name}/  ->  ltbench diff {spec.id} {flags}".rstrip()
                         for name, flags in others) +
              "\nSelect one with those flags (--epochs N, --dataset NAME, --quick).")
    raise SpecError(msg)
  run = store.read_json(run_file, "the last run's configuration keys",
                        f"Rerun `{command}` with the same flags to rewrite it: finished "
                        "trials are kept and are not retrained.")
  keys = run.get("config_keys")
  if not isinstance(keys, dict):
    raise ResultsError(f"{run_file} has no config_keys. Rerun `{command}` with the same "
                       "flags to rewrite it: finished trials are kept and not retrained.")
  trials = [t for t in TrialStore(out_dir / store.TRIALS_NAME).load()
            if keys.get(t["row"]) == t["config"]]
  return report.build_table(spec, trials)
