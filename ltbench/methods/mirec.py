"""MIRec (Zhang et al., "A Model of Two Tales", WWW 2021) and its §5.2 baselines, on the
shared two-tower backbone and training loop.

  Over-/Under-sampling  the two-tower on a re-balanced example pool (head and tail equal mass)
  Head2Tail/Tail2Head   two curriculum stages (head-only then tail-only, or the reverse), the
                        learning rate decayed between them
  MeLU                  MAML with users as tasks (Lee et al., KDD 2019) on the two-tower: the
                        user tower's MLP adapts locally, everything updates globally
  MIRec                 many-shot θ* on Ω* with logQ (Eqs. 4, 7), then the few-shot θ and the
                        meta-learner F(θ; w) on Ω(k) by Eq. 5 with one local step and a global
                        update (Algorithm 1); serving Eq. 9
  MIRec ablations       MIRec_M (head items only), MIRec_C (no meta-learner: fine-tune on
                        Ω(k)), MIRec − LogQ (λ_c = 0), Two-tower₂ (two two-towers mixed by λ_p)

Choices the paper leaves open are listed in docs/decisions.md ("MIRec (WWW'21)").
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from ltbench import meta
from ltbench.data import samplers
from ltbench.methods.baselines import (TwoTowerSoftmax, WrapsBase, gather_rows, logq_objective,
                                       sampler_log_q, softmax_objective)
from ltbench.models.towers import Tower
from ltbench.train import permutation_batches

# Salts folded into a trial's key for its once-per-trial draws (train.Method.trial_data).
OMEGA_SALT = 0x0E6A  # Ω(k)
UNDER_SALT = 0x0DD5  # the under-sampled head subset


def slice_pool(data, which: str, size: int) -> jax.Array:
  """Indices of the training examples whose item is in the head (which="head") or the tail;
  `size` is that count (static, host-computed: `slice_sizes`)."""
  is_head_N = data["head_mask"][data["train_item"]]
  return jnp.nonzero(is_head_N if which == "head" else ~is_head_N, size=size)[0]


def slice_sizes(bundle) -> tuple[int, int]:
  """(training examples of head items, of tail items)."""
  n_head = int(bundle.head_mask[bundle.train_item].sum())
  return n_head, int(bundle.num_train) - n_head


# -- re-sampling (§5.2) ------------------------------------------------------------------

RESAMPLE_MODES = ("over", "under")


@dataclasses.dataclass(frozen=True)
class Resampled(WrapsBase):
  """The two-tower trained on a re-balanced pool in which head and tail examples have equal
  mass. "over": every example of the heavier slice once, the lighter slice's examples
  repeated (a random tiling, so repeat counts differ by at most one) to the same number.
  "under": every example of the lighter slice once and a uniform draw without replacement of
  as many of the heavier slice's, drawn once per trial. On ML-1M the heavier slice is the head
  (the paper's "repeatedly samples from tail items" / "down-sample the head items")."""

  base: TwoTowerSoftmax
  mode: str  # one of RESAMPLE_MODES
  num_head: int  # training examples of head items
  num_tail: int  # training examples of tail items

  def __post_init__(self):
    if self.mode not in RESAMPLE_MODES:
      raise ValueError(f"mode must be one of {RESAMPLE_MODES}, got {self.mode!r}")
    if min(self.num_head, self.num_tail) == 0:
      raise ValueError("re-sampling needs training examples of both head and tail items")

  def init(self, key, data):
    return self.base.init(key, data)

  @property
  def heavy(self) -> str:
    return "head" if self.num_head >= self.num_tail else "tail"

  def trial_data(self, key, data):
    if self.mode == "over":
      return {}
    light = min(self.num_head, self.num_tail)
    heavy_N = slice_pool(data, self.heavy, max(self.num_head, self.num_tail))
    kept = jax.random.permutation(jax.random.fold_in(key, UNDER_SALT), heavy_N)[:light]
    return {"under_kept": kept}

  def pool(self, key, data) -> jax.Array:
    """The re-balanced example pool (indices into the training examples)."""
    light_name = "tail" if self.heavy == "head" else "head"
    light, heavy = sorted((self.num_head, self.num_tail))
    light_N = slice_pool(data, light_name, light)
    if self.mode == "under":
      return jnp.concatenate([light_N, data["under_kept"]])
    tiled = jax.random.permutation(key, light_N)[jnp.arange(heavy) % light]
    return jnp.concatenate([slice_pool(data, self.heavy, heavy), tiled])

  def sample(self, key, data, epoch, num_steps, batch_size):
    k_pool, k_perm = jax.random.split(key)
    return samplers.batches_from_pool(k_perm, self.pool(k_pool, data), num_steps, batch_size)

  def loss(self, params, batch_idx_B, data, key, epoch):
    return self.base.loss(params, batch_idx_B, data, key, epoch)

  def serve(self, params, data):
    return self.base.serve(params, data)


# -- curriculum (Head2Tail, Tail2Head) ---------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Curriculum:
  """Two curriculum stages on the two-tower: stage 1 trains on the examples of one slice's
  items only (`first`), stage 2 on the other slice's, every parameter training in both. The
  loop starts stage 2 with a fresh Adam state and the learning rate times `lr_decay` (the
  paper's "decay rate between each curriculum stages", grid {0.1, 0.01, 0.001, 0.0001})."""

  base: TwoTowerSoftmax
  first: str  # "head" (Head2Tail) or "tail" (Tail2Head)
  switch_epoch: int  # first epoch of stage 2
  lr_decay: float  # stage 2 learning rate = row learning rate × lr_decay
  num_head: int
  num_tail: int

  def __post_init__(self):
    if self.first not in ("head", "tail"):
      raise ValueError(f"first must be 'head' or 'tail', got {self.first!r}")
    if not 0 < self.lr_decay <= 1:
      raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
    if min(self.num_head, self.num_tail) == 0:
      raise ValueError("a head/tail curriculum needs training examples of both slices")

  @property
  def name(self):
    return self.base.name

  @property
  def second(self) -> str:
    return "tail" if self.first == "head" else "head"

  def program_key(self):
    return dataclasses.replace(self, base=self.base.program_key())

  @property
  def phase_starts(self):
    return (self.switch_epoch,)

  def phase_lr_scale(self, phase):
    return self.lr_decay

  def begin_phase(self, phase, params, key, data):
    return params

  def init(self, key, data):
    return self.base.init(key, data)

  def _batches(self, which, key, data, num_steps, batch_size):
    size = self.num_head if which == "head" else self.num_tail
    return samplers.batches_from_pool(key, slice_pool(data, which, size), num_steps, batch_size)

  def sample(self, key, data, epoch, num_steps, batch_size):
    return jax.lax.cond(epoch < self.switch_epoch,
                        lambda k: self._batches(self.first, k, data, num_steps, batch_size),
                        lambda k: self._batches(self.second, k, data, num_steps, batch_size),
                        key)

  def loss(self, params, batch_idx_B, data, key, epoch):
    return self.base.loss(params, batch_idx_B, data, key, epoch)

  def serve(self, params, data):
    return self.base.serve(params, data)


# -- MeLU --------------------------------------------------------------------------------

# The local step adapts the user tower's MLP (MeLU's decision layers); its embedding tables
# (the encoder) and the whole item tower only take the global update.
MELU_LOCAL_MASK = {"encoder": False, "mlp": True}


@dataclasses.dataclass(frozen=True)
class MeLU(WrapsBase):
  """MeLU (Lee et al., KDD 2019) for implicit feedback on the two-tower (MIRec §5.2).

  Tasks are users. A step draws `batch_size // (support + query)` users uniformly (among
  users with training data) and, per user, `support + query` consecutive examples of a
  per-epoch shuffle of that user's training examples, from a random start (wrapping; the
  two sets are disjoint when the user has at least support + query examples). The task loss
  is the full-softmax cross-entropy over all items of the user's examples. Local update: one
  SGD step of size `local_lr` on the user tower's MLP on the support set (ltbench.meta, mask
  MELU_LOCAL_MASK); global update: the loop's Adam on every parameter, on the query loss at
  the adapted parameters (second order unless `first_order`).

  Serving adapts each user the same way on all of its training examples, then embeds it.
  """

  base: TwoTowerSoftmax
  support: int = 8  # support examples per task
  query: int = 8  # query examples per task
  local_lr: float = 1e-3  # local SGD step size
  first_order: bool = False  # FOMAML instead of MAML
  serve_chunk: int = 256  # users adapted at once at serving (memory knob)

  def __post_init__(self):
    if self.support < 1 or self.query < 1:
      raise ValueError(f"support and query must be >= 1, got {self.support}, {self.query}")
    if self.local_lr < 0:
      raise ValueError(f"local_lr must be >= 0, got {self.local_lr}")

  @property
  def user_tower(self) -> Tower:
    cfg = self.base.model_cfg
    return Tower(self.base.user_fields, cfg.embed_dim, tuple(cfg.sizes), cfg.dropout)

  def init(self, key, data):
    return self.base.init(key, data)

  def tasks_per_step(self, batch_size: int) -> int:
    tasks = batch_size // (self.support + self.query)
    if tasks < 1:
      raise ValueError(f"batch_size {batch_size} is smaller than one task's support + query "
                       f"= {self.support + self.query} examples")
    return tasks

  def sample(self, key, data, epoch, num_steps, batch_size):
    k_order, k_user, k_start = jax.random.split(key, 3)
    train_user = data["train_user"]
    num_users = data["user_features"]["user_id"].shape[0]
    n = train_user.shape[0]
    order_N = jnp.lexsort((jax.random.uniform(k_order, (n,)), train_user))  # by user, shuffled
    counts_U = jnp.bincount(train_user, length=num_users)
    start_U = jnp.cumsum(counts_U) - counts_U
    tasks = self.tasks_per_step(batch_size)
    has_U = (counts_U > 0).astype(jnp.float32)
    users_SxT = jax.random.choice(k_user, num_users, (num_steps, tasks), p=has_U / has_U.sum())
    count_SxT = counts_U[users_SxT]
    first_SxT = jnp.floor(jax.random.uniform(k_start, (num_steps, tasks)) * count_SxT
                          ).astype(jnp.int32)
    offset_1x1xL = jnp.arange(self.support + self.query)[None, None]
    pos_SxTxL = (first_SxT[..., None] + offset_1x1xL) % jnp.maximum(count_SxT, 1)[..., None]
    idx_SxTxL = order_N[start_U[users_SxT][..., None] + pos_SxTxL]
    return {"user": users_SxT, "item": data["train_item"][idx_SxTxL]}

  def task_loss(self, tower_params, task, items_IxD):
    """Softmax cross-entropy of one user's examples over all items: the mean over its items
    of logsumexp(u·V) − u·v_i = logsumexp(u·V) − u·mean(v_i) (task["target_D"])."""
    rngs = {"dropout": task["key"]} if "key" in task else {}
    user_1xD = self.user_tower.apply({"params": tower_params}, task["feats"],
                                     "key" not in task, rngs=rngs)
    logits_I = items_IxD @ user_1xD[0]
    return jax.nn.logsumexp(logits_I) - user_1xD[0] @ task["target_D"], {}

  def loss(self, params, batch, data, key, epoch):
    k_items, k_tasks = jax.random.split(key)
    model = self.base.model
    items_IxD = model.apply(params, data["item_features"], False, method=model.items,
                            rngs={"dropout": k_items})
    tower = params["params"]["user_tower"]
    users_T = batch["user"]
    feats_T = gather_rows(data["user_features"], users_T[:, None])  # one row per task
    target_TxLxD = items_IxD[batch["item"]]
    support_TxD = target_TxLxD[:, :self.support].mean(1)
    query_TxD = target_TxLxD[:, self.support:].mean(1)
    keys_T = jax.random.split(k_tasks, users_T.shape[0])

    def task(feats, support_D, query_D, k):
      k_s, k_q = jax.random.split(k)
      loss_fn = lambda p, t: self.task_loss(p, t, items_IxD)
      loss, _ = meta.global_loss(loss_fn, tower, {"feats": feats, "target_D": support_D, "key": k_s},
                                 {"feats": feats, "target_D": query_D, "key": k_q}, self.local_lr,
                                 mask=MELU_LOCAL_MASK, first_order=self.first_order)
      return loss

    return jax.vmap(task)(feats_T, support_TxD, query_TxD, keys_T).mean(), {}

  def history_targets(self, data, items_IxD):
    """(mean item vector of each user's training examples [U, D], count of them [U])."""
    num_users = data["user_features"]["user_id"].shape[0]
    counts_U = jnp.bincount(data["train_user"], length=num_users)
    sum_UxD = jax.ops.segment_sum(items_IxD[data["train_item"]], data["train_user"], num_users)
    return sum_UxD / jnp.maximum(counts_U, 1)[:, None].astype(sum_UxD.dtype), counts_U

  def adapted_tower(self, params, data, user, target_D, count, items_IxD):
    """The user tower's parameters after the local step on one user's whole training
    history (target_D: its mean item vector); a user without training data keeps the
    global parameters."""
    lr = jnp.where(count > 0, self.local_lr, 0.0)
    feats = gather_rows(data["user_features"], user[None])
    return meta.local_update(lambda p, t: self.task_loss(p, t, items_IxD),
                             params["params"]["user_tower"],
                             {"feats": feats, "target_D": target_D}, lr, mask=MELU_LOCAL_MASK)

  def serve(self, params, data):
    model = self.base.model
    items_IxD = model.apply(params, data["item_features"], True, method=model.items)
    target_UxD, counts_U = self.history_targets(data, items_IxD)

    def embed(inputs):
      user, target_D, count = inputs
      tower = self.adapted_tower(params, data, user, target_D, count, items_IxD)
      feats = gather_rows(data["user_features"], user[None])
      return self.user_tower.apply({"params": tower}, feats, True)[0]

    users_U = jnp.arange(counts_U.shape[0])
    users_UxD = jax.lax.map(embed, (users_U, target_UxD, counts_U), batch_size=self.serve_chunk)
    return users_UxD, items_IxD


# -- MIRec -------------------------------------------------------------------------------

def last_layer_name(model_cfg) -> str:
  return f"dense_{len(model_cfg.sizes) - 1}"


class MetaMap(nn.Module):
  """F(·; w) on one tower's last layer (kernel [H, D], bias [D]).

  Each of the D output units owns a column of H + 1 numbers (its fan-in weights and its
  bias). The columns are cut into D / group blocks of `group` consecutive units, each block
  flattened to n = group·(H + 1) numbers, and every block goes through the same fully
  connected layer x ↦ W x + c with W = I + Δ: Δ [n, n] and c [n] start at zero, so F starts
  as the identity exactly. group = 1 maps every unit's column alike (the default, (H+1)² + H+1
  parameters a tower); group = D is one dense map on all of the layer's parameters.
  """

  group: int = 1  # output units per block

  @nn.compact
  def __call__(self, kernel_HxD, bias_D):
    h, d = kernel_HxD.shape
    if d % self.group:
      raise ValueError(f"meta_group {self.group} must divide the tower output size {d}")
    n = self.group * (h + 1)
    cols_DxH1 = jnp.concatenate([kernel_HxD.T, bias_D[:, None]], axis=1)
    blocks_Gxn = cols_DxH1.reshape(d // self.group, n)
    delta = self.param("delta", nn.initializers.zeros, (n, n))
    c = self.param("c", nn.initializers.zeros, (n,))
    mapped = blocks_Gxn + blocks_Gxn @ delta.T + c[None]
    cols = mapped.reshape(d, h + 1)
    return cols[:, :h].T, cols[:, h]


ITEM_SETS = ("all", "head")
THETA_INITS = ("many_shot", "random")


@dataclasses.dataclass(frozen=True)
class MIRec:
  """MIRec (§3, Algorithm 1) and its ablations as options.

  Parameters: {"theta_star": a two-tower (many-shot), "theta": a two-tower (few-shot),
  "w": {"user": F's block map, "item": ...}} ("w" absent without the meta-learner).

  Schedule (the paper's 100 + 100 for curriculum methods): epochs [0, switch) train θ* on Ω*
  with the logQ-corrected softmax (Eqs. 4, 7; λ_c = `lambda_c`), θ and w frozen. At the switch
  θ starts from θ* (`theta_init="many_shot"`, the curriculum Ω* → Ω(k) of §3.2; "random"
  keeps θ's own initialisation, Algorithm 1 line 1), a fresh Adam state starts with the
  learning rate × `lr_decay`, θ* is frozen, and every step takes a batch of Ω(k) and
  minimises Eq. 5, L(w, θ) = ‖F(θ; w) − θ*‖² + λ·L_g(θ | Ω(k)) (the norm over the two towers'
  last-layer parameters), with one local SGD step of size `local_lr` on θ (w fixed) and the
  global gradient in θ and w through it (Algorithm 1 lines 15-20; ltbench.meta), applied by
  the loop's Adam.

  Ω(k) (Eq. 8): k is the smallest training count among head items; drawn once per trial
  (`trial_data`, Algorithm 1 line 2). `items="head"` (MIRec_M) builds Ω* and Ω(k) from head
  items only. `meta_learner=False` (MIRec_C) drops F and Eq. 5's first term: stage 2
  fine-tunes θ on Ω(k) by L_g.

  Serving (Eq. 9): λ_p·g(x, y; θ*) + (1 − λ_p)·g(x, y; F(θ; w)), as user [λ_p·u*, (1−λ_p)·u']
  and item [v*, v'] vectors (dot product = Eq. 9).
  """

  name: str
  base: TwoTowerSoftmax  # the backbone (fields, ModelConfig); its objective is unused
  switch_epoch: int
  k: int  # Ω(k)'s per-item cap
  omega_size: int  # |Ω(k)| (static)
  num_head: int  # training examples of head items (Ω* of MIRec_M)
  lambda_c: float = 1.0  # logQ weight in θ*'s training logits (Eq. 7)
  lam: float = 0.1  # λ of Eq. 5
  lambda_p: float = 0.5  # serving mix (Eq. 9)
  local_lr: float = 0.01  # β, the local step size
  lr_decay: float = 0.1  # learning-rate factor of the meta stage
  meta_learner: bool = True  # False: MIRec_C
  items: str = "all"  # "all" | "head" (MIRec_M)
  theta_init: str = "many_shot"  # θ at the switch: θ* ("many_shot") or its own init
  meta_group: int = 1  # F's block size in output units (MetaMap)
  first_order: bool = False  # FOMAML local step

  def __post_init__(self):
    if self.items not in ITEM_SETS:
      raise ValueError(f"items must be one of {ITEM_SETS}, got {self.items!r}")
    if self.theta_init not in THETA_INITS:
      raise ValueError(f"theta_init must be one of {THETA_INITS}, got {self.theta_init!r}")
    if not 0 <= self.lambda_p <= 1:
      raise ValueError(f"lambda_p must be in [0, 1], got {self.lambda_p}")
    if self.lam < 0 or self.local_lr < 0 or self.lambda_c < 0:
      raise ValueError("lam, local_lr and lambda_c must be >= 0")
    if not 0 < self.lr_decay <= 1:
      raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
    if self.k < 1 or self.omega_size < 1:
      raise ValueError(f"Ω(k) is empty (k = {self.k}); the data need head items")
    d = self.base.model_cfg.sizes[-1]
    if self.meta_group < 1 or d % self.meta_group:
      raise ValueError(f"meta_group must divide the tower output size {d}, got "
                       f"{self.meta_group}")

  def program_key(self):
    return dataclasses.replace(self, name="", base=self.base.program_key())

  @property
  def phase_starts(self):
    return (self.switch_epoch,)

  def phase_lr_scale(self, phase):
    return self.lr_decay

  @property
  def meta_map(self) -> MetaMap:
    return MetaMap(self.meta_group)

  # -- parameters ----------------------------------------------------------------------

  def init(self, key, data):
    k_star, k_theta, k_user, k_item = jax.random.split(key, 4)
    params = {"theta_star": self.base.init(k_star, data), "theta": self.base.init(k_theta, data)}
    if self.meta_learner:
      params["w"] = {}
      for tower, side, k in (("user_tower", "user", k_user), ("item_tower", "item", k_item)):
        layer = self._last(params["theta"], tower)
        params["w"][side] = self.meta_map.init(k, layer["kernel"], layer["bias"])
    return params

  def _last(self, tt_params, tower):
    return tt_params["params"][tower]["mlp"][last_layer_name(self.base.model_cfg)]

  def mapped(self, theta, w):
    """F(θ; w): θ with the last layer of each tower replaced by its image under F."""
    if w is None:
      return theta
    name = last_layer_name(self.base.model_cfg)
    out = {"params": dict(theta["params"])}
    for tower, side in (("user_tower", "user"), ("item_tower", "item")):
      layer = self._last(theta, tower)
      kernel, bias = self.meta_map.apply(w[side], layer["kernel"], layer["bias"])
      t = theta["params"][tower]
      out["params"][tower] = {**t, "mlp": {**t["mlp"], name: {"kernel": kernel, "bias": bias}}}
    return out

  def distance(self, mapped_theta, theta_star):
    """‖F(θ; w) − θ*‖² over the two towers' last-layer parameters (Eq. 5, first term)."""
    total = 0.0
    for tower in ("user_tower", "item_tower"):
      a, b = self._last(mapped_theta, tower), self._last(theta_star, tower)
      total = total + sum(jnp.sum((a[n] - b[n]) ** 2) for n in ("kernel", "bias"))
    return total

  # -- data ----------------------------------------------------------------------------

  def trial_data(self, key, data):
    """Ω(k) as a boolean mask over the training examples, drawn once per trial (Eq. 8)."""
    keep_N = samplers.omega_k_mask(data["train_item"], self.k, jax.random.fold_in(key, OMEGA_SALT))
    if self.items == "head":
      keep_N = keep_N & data["head_mask"][data["train_item"]]
    return {"omega_k": keep_N}

  def sample(self, key, data, epoch, num_steps, batch_size):
    def omega_star(k):  # Eq. 6 (all items) or MIRec_M's head items
      if self.items == "all":
        return permutation_batches(k, data["train_user"].shape[0], num_steps, batch_size)
      return samplers.batches_from_pool(k, slice_pool(data, "head", self.num_head), num_steps,
                                        batch_size)

    def omega_k(k):
      pool = jnp.nonzero(data["omega_k"], size=self.omega_size)[0]
      return samplers.batches_from_pool(k, pool, num_steps, batch_size)

    return jax.lax.cond(epoch < self.switch_epoch, omega_star, omega_k, key)

  # -- training ------------------------------------------------------------------------

  def update_mask(self, params, epoch):
    """θ* trains in stage 1 only; θ and w in stage 2 only."""
    stage2 = epoch >= self.switch_epoch
    return {name: jax.tree.map(lambda _: stage2 if name != "theta_star" else ~stage2, sub)
            for name, sub in params.items()}

  def begin_phase(self, phase, params, key, data):
    if self.theta_init == "many_shot":
      return {**params, "theta": params["theta_star"]}
    return params

  def base_loss(self, tt_params, batch_idx_B, data, key, objective, sampler="natural"):
    """L_g on a batch; with in-batch softmax the logits include the sampling correction of the
    stage's pool (Ω*: natural frequencies, Ω(k): min(count, k))."""
    user_B = data["train_user"][batch_idx_B]
    item_B = data["train_item"][batch_idx_B]
    user_BxD, cand_CxD, labels_B, cand_C = self.base.candidates(tt_params, data, user_B, item_B,
                                                                key)
    logits_BxC = self.base.logits(user_BxD, cand_CxD, labels_B, cand_C,
                                  sampler_log_q(sampler, data, self.k))
    return objective(logits_BxC, labels_B, cand_C, data)

  def eq5(self, p, batch, theta_star, data):
    """Eq. 5 at p = {"theta", "w"}: ‖F(θ; w) − θ*‖² + λ·L_g(θ | batch of Ω(k))."""
    l_g = self.base_loss(p["theta"], batch["idx"], data, batch["key"], softmax_objective(),
                         "omega_r")
    dist = self.distance(self.mapped(p["theta"], p["w"]), theta_star)
    return dist + self.lam * l_g, {}

  def loss(self, params, batch_idx_B, data, key, epoch):
    def stage1(params):  # Eqs. 4, 7
      return self.base_loss(params["theta_star"], batch_idx_B, data, key,
                            logq_objective(float(self.lambda_c)))

    def stage2(params):
      if not self.meta_learner:  # MIRec_C: fine-tune θ on Ω(k)
        return self.base_loss(params["theta"], batch_idx_B, data, key, softmax_objective(),
                              "omega_r")
      theta_star = jax.lax.stop_gradient(params["theta_star"])
      k_local, k_global = jax.random.split(key)
      loss_fn = lambda p, b: self.eq5(p, b, theta_star, data)
      loss, _ = meta.global_loss(  # Algorithm 1 lines 15-20
          loss_fn, {"theta": params["theta"], "w": params["w"]},
          {"idx": batch_idx_B, "key": k_local}, {"idx": batch_idx_B, "key": k_global},
          self.local_lr, mask={"theta": True, "w": False}, first_order=self.first_order)
      return loss

    return jax.lax.cond(epoch < self.switch_epoch, stage1, stage2, params), {}

  # -- serving -------------------------------------------------------------------------

  def serve(self, params, data):
    """Eq. 9 as a dot product: user [λ_p·u*, (1 − λ_p)·u'], item [v*, v']."""
    users = jnp.arange(data["user_features"]["user_id"].shape[0])
    user_star, item_star = self.base.embed(params["theta_star"], data, users)
    mapped = self.mapped(params["theta"], params.get("w"))
    user_f, item_f = self.base.embed(mapped, data, users)
    lp = self.lambda_p
    return (jnp.concatenate([lp * user_star, (1.0 - lp) * user_f], -1),
            jnp.concatenate([item_star, item_f], -1))


# -- Two-tower₂ --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TwoTowerMix(WrapsBase):
  """Two-tower₂ (§5.4): two independently initialised two-towers, each trained on all data
  by the plain softmax (its own data order and dropout), served mixed as in Eq. 9:
  λ_p·g(θ₁) + (1 − λ_p)·g(θ₂)."""

  base: TwoTowerSoftmax
  lambda_p: float = 0.5

  def __post_init__(self):
    if not 0 <= self.lambda_p <= 1:
      raise ValueError(f"lambda_p must be in [0, 1], got {self.lambda_p}")

  def init(self, key, data):
    k1, k2 = jax.random.split(key)
    return {"theta_1": self.base.init(k1, data), "theta_2": self.base.init(k2, data)}

  def sample(self, key, data, epoch, num_steps, batch_size):
    k1, k2 = jax.random.split(key)
    return {"theta_1": self.base.sample(k1, data, epoch, num_steps, batch_size),
            "theta_2": self.base.sample(k2, data, epoch, num_steps, batch_size)}

  def loss(self, params, batch, data, key, epoch):
    k1, k2 = jax.random.split(key)
    l1, _ = self.base.loss(params["theta_1"], batch["theta_1"], data, k1, epoch)
    l2, _ = self.base.loss(params["theta_2"], batch["theta_2"], data, k2, epoch)
    return l1 + l2, {}

  def serve(self, params, data):
    u1, v1 = self.base.serve(params["theta_1"], data)
    u2, v2 = self.base.serve(params["theta_2"], data)
    lp = self.lambda_p
    return jnp.concatenate([lp * u1, (1.0 - lp) * u2], -1), jnp.concatenate([v1, v2], -1)
