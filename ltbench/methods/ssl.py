"""Self-supervised learning for the item tower (Yao et al., CIKM 2021), on the feature-based
two-tower backbone (`baselines.TwoTowerSoftmax`).

L = L_main + α·L_self. L_main is the backbone's softmax loss (query-item), unchanged.
L_self is a contrastive softmax over the batch's items: each item passes through the shared
item tower twice, under two augmentations, and view 1 of item i must pick view 2 of item i
among view 2 of all batch items (cosine similarity / τ). Three item-tower calls per step in
all. Serving is the backbone's: the augmentations and the default embeddings are used in
training only.

Augmentation, in two stages (§3.2):
  1. masking: a masked feature's encoding (its embedding, pooled multi-hot embedding or
     continuous value) is replaced by a learned default vector of the same width.
     RFM masks a random half of the features in view 1 and the complement in view 2; CFM
     picks a seed feature uniformly, masks it and its n highest-MI features
     (`correlated_feature_mask`) in view 1, and the complement in view 2. Masks are drawn per
     item.
  2. dropout of the individual values of multi-valued (multi-hot) features, rate p,
     independently per view.

Baselines on the same class: Feature Dropout (FD: the value dropout applied to the main
task's item inputs, no masking, no auxiliary loss) and spread-out regularisation (the same
contrastive softmax between un-augmented items: both views are one tower pass, so the
positive logit is 1/τ and only the push between different items remains).

`TrainSubset` restricts any permutation-sampled method to a fraction of the training
examples drawn per trial seed (the SSL paper's RQ2).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ltbench import losses
from ltbench.data.bundle import Features, FieldSpec
from ltbench.methods.baselines import TwoTowerSoftmax, gather_rows
from ltbench.models.towers import MLP, FeatureEncoder, hash_bits, lowbias32
from ltbench.train import program_key as _program_key


def correlated_feature_mask(mi_FxF, seed, n) -> jax.Array:
  """The features CFM masks: the seed feature and the n features of highest MI with it.

  Features are ranked by mi_FxF[seed, j], highest first, ties to the lower index j; the
  seed itself never competes (a feature's MI with itself is its entropy, the diagonal is
  ignored), so the mask holds min(n, F − 1) + 1 features: n ≥ F − 1 masks every feature,
  n = 0 only the seed. Only row `seed` is read (MI is symmetric; the table is not checked
  for it). The paper picks the seed at random per view and masks the seed's k/2 most
  correlated features with it (n = k/2).

  Pure jnp, so jittable and vmappable over seeds; `seed` and `n` may be traced. Values
  are checked only when concrete: under jit an out-of-range seed or a NaN in the table
  gives an unspecified mask.

  Args:
    mi_FxF: float [F, F], pairwise mutual information between the F item features (F ≥ 1),
      finite.
    seed: int in [0, F), the seed feature.
    n: int ≥ 0, how many features to mask besides the seed.

  Returns:
    bool [F], True for the masked features.

  Example:
    >>> mi = jnp.array([[1.0, 0.2, 0.5], [0.2, 1.0, 0.2], [0.5, 0.2, 1.0]])
    >>> correlated_feature_mask(mi, 1, 1)  # features 0 and 2 tie at 0.2: 0 wins
    Array([ True,  True, False], dtype=bool)

  References:
    Yao et al., Self-supervised Learning for Large-scale Item Recommendations, CIKM 2021,
    §3 (Correlated Feature Masking).
  """
  mi_FxF = jnp.asarray(mi_FxF)
  if mi_FxF.ndim != 2 or mi_FxF.shape[0] != mi_FxF.shape[1] or mi_FxF.shape[0] == 0:
    raise ValueError(f"mi_FxF must be a square [F, F] matrix with F >= 1, got shape "
                     f"{tuple(mi_FxF.shape)}")
  if not jnp.issubdtype(mi_FxF.dtype, jnp.floating):
    mi_FxF = mi_FxF.astype(jnp.float32)
  f = mi_FxF.shape[0]
  seed = _index_arg("seed", seed, f)
  n = _index_arg("n", n, None)
  if not isinstance(n, jax.core.Tracer):
    n = min(n, f)  # n >= F - 1 masks everything; keeps a huge n inside int32
  if not isinstance(mi_FxF, jax.core.Tracer) and not np.isfinite(np.asarray(mi_FxF)).all():
    raise ValueError("mi_FxF must be finite (no NaN or inf)")

  return _cfm_mask(mi_FxF, seed, n)


@jax.jit
def _cfm_mask(mi_FxF, seed, n):
  row_F = mi_FxF[seed]
  idx_F = jnp.arange(mi_FxF.shape[0])
  is_seed_F = idx_F == seed
  # ahead_FxF[j, i]: feature i ranks ahead of feature j (higher MI, or equal and lower
  # index); the seed is ahead of nobody. == treats -0.0 and 0.0 as the tie they are.
  ahead_FxF = ((row_F[None, :] > row_F[:, None])
               | ((row_F[None, :] == row_F[:, None]) & (idx_F[None, :] < idx_F[:, None])))
  rank_F = jnp.sum(ahead_FxF & ~is_seed_F[None, :], axis=1)
  return is_seed_F | (rank_F < n)


def _index_arg(name, value, upper):
  """A scalar integer argument; checked against [0, upper) (or >= 0) when concrete."""
  if isinstance(value, jax.core.Tracer):
    if value.ndim != 0 or not jnp.issubdtype(value.dtype, jnp.integer):
      raise ValueError(f"{name} must be a scalar integer, got {value.dtype}{list(value.shape)}")
    return value
  arr = np.asarray(value)
  if arr.ndim != 0 or not np.issubdtype(arr.dtype, np.integer):
    raise ValueError(f"{name} must be a scalar integer, got {value!r}")
  value = int(arr)
  if value < 0 or (upper is not None and value >= upper):
    bound = f"in [0, {upper})" if upper is not None else ">= 0"
    raise ValueError(f"{name} must be {bound}, got {value}")
  return value


# -- mutual information between item features ----------------------------------------------

def _feature_codes(field: FieldSpec, values: np.ndarray, num_buckets: int) -> np.ndarray:
  """One discrete code per row: the category, the set of a multi-hot row's values, or the
  quantile bucket of a continuous value."""
  values = np.asarray(values)
  if field.kind == "categorical":
    return np.unique(values, return_inverse=True)[1].reshape(-1)
  if field.kind == "multi_hot":
    rows = np.sort(np.where(values >= 0, values, -1), axis=1)  # a set, whatever the order
    return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
  x = values.astype(np.float64)
  edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, num_buckets + 1)[1:-1]))
  return np.searchsorted(edges, x, side="right")


def feature_mutual_information(features: Features, weights=None, num_buckets: int = 10
                               ) -> np.ndarray:
  """Pairwise mutual information (nats) between the features of one entity table, for CFM.

  Each feature becomes one discrete variable per row: categorical features as they are,
  multi-valued (multi-hot) features by their set of values, continuous ones by
  `num_buckets` quantile buckets. MI is the plug-in estimate from the weighted joint
  counts; with `weights` = the items' training counts it is the MI over the training
  examples' items (the paper computes it once from the training data).

  Args:
    features: the item (or user) Features, F fields.
    weights: optional non-negative float [N] per row; None weighs every row alike.
    num_buckets: quantile buckets of a continuous feature (>= 2).

  Returns:
    numpy float64 [F, F], symmetric, >= 0; the diagonal holds each feature's entropy.
  """
  if num_buckets < 2:
    raise ValueError(f"num_buckets must be >= 2, got {num_buckets}")
  n = features.num_rows
  w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
  if w.shape != (n,) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
    raise ValueError(f"weights must be {n} finite non-negative values with a positive sum")
  keep = w > 0
  w = w[keep] / w[keep].sum()
  codes = [_feature_codes(f, features.arrays[f.name], num_buckets)[keep] for f in features.fields]
  f_count = len(codes)
  mi = np.zeros((f_count, f_count))
  for a in range(f_count):
    for b in range(a, f_count):
      ca, cb = codes[a].astype(np.int64), codes[b].astype(np.int64)
      kb = int(cb.max()) + 1
      pair, inv = np.unique(ca * kb + cb, return_inverse=True)
      p_ab = np.bincount(inv.reshape(-1), weights=w)
      p_a = np.bincount(ca, weights=w)[pair // kb]
      p_b = np.bincount(cb, weights=w)[pair % kb]
      ok = p_ab > 0
      value = float(np.sum(p_ab[ok] * (np.log(p_ab[ok]) - np.log(p_a[ok]) - np.log(p_b[ok]))))
      mi[a, b] = mi[b, a] = max(value, 0.0)
  return mi


# -- augmentation --------------------------------------------------------------------------

def drop_values(feats: dict, fields, key, rate) -> dict:
  """Drops each value of every multi-hot field with probability `rate` (it becomes padding,
  -1); other fields are returned as they are. A row that loses all its values pools to the
  zero vector. `rate` may be traced; 0 drops nothing."""
  out = dict(feats)
  for j, f in enumerate(fields):
    if f.kind != "multi_hot":
      continue
    x = feats[f.name]
    seed = jax.random.bits(jax.random.fold_in(key, j), (), jnp.uint32)
    u = hash_bits(seed, x.shape).astype(jnp.float32) * jnp.float32(2.0 ** -32)
    out[f.name] = jnp.where(u >= rate, x, -1)
  return out


def field_widths(fields, embed_dim: int) -> tuple[int, ...]:
  """Width of each field's slice of `FeatureEncoder`'s output."""
  return tuple(1 if f.kind == "continuous" else embed_dim for f in fields)


MASKINGS = ("rfm", "cfm", "none")
AUXES = ("ssl", "spread_out", "none")
SSL_ITEMS = ("batch", "uniform")


@dataclasses.dataclass(frozen=True)
class SSLTwoTower:
  """The backbone two-tower plus SSL's auxiliary item loss (or a baseline of it).

  aux="ssl": contrastive softmax between two augmented views (masking + value dropout);
  aux="spread_out": the same softmax between un-augmented items (spread-out);
  aux="none" with main_dropout=True: Feature Dropout on the main task.
  α (alpha), τ (tau) and the value-dropout rate p reach the loss as traced `hyper` values,
  so sweeps over them share one compiled program.
  """

  name: str
  base: TwoTowerSoftmax
  aux: str = "ssl"  # one of AUXES
  masking: str = "cfm"  # one of MASKINGS (aux="ssl" only)
  alpha: float = 0.1  # α, weight of L_self
  tau: float = 0.1  # τ, softmax temperature of L_self
  value_dropout: float = 0.1  # p, dropout rate of multi-valued feature values
  n: int = 1  # CFM: features masked with the seed
  mi: tuple[tuple[float, ...], ...] | None = None  # CFM: [F, F] MI table (hashable)
  main_dropout: bool = False  # FD: value dropout on the main task's item inputs
  ssl_items: str = "batch"  # the items of L_self: the batch's targets, or uniform draws

  def __post_init__(self):
    for value, valid, what in ((self.aux, AUXES, "aux"), (self.masking, MASKINGS, "masking"),
                               (self.ssl_items, SSL_ITEMS, "ssl_items")):
      if value not in valid:
        raise ValueError(f"{what} must be one of {valid}, got {value!r}")
    if not (isinstance(self.alpha, (int, float)) and self.alpha >= 0 and math.isfinite(self.alpha)):
      raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
    if not (isinstance(self.tau, (int, float)) and self.tau > 0 and math.isfinite(self.tau)):
      raise ValueError(f"tau must be a finite number > 0, got {self.tau!r}")
    if not (isinstance(self.value_dropout, (int, float)) and 0 <= self.value_dropout < 1):
      raise ValueError(f"value_dropout must lie in [0, 1), got {self.value_dropout!r}")
    if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 0:
      raise ValueError(f"n must be an integer >= 0, got {self.n!r}")
    if self.aux == "ssl" and self.masking == "cfm" and self.mi is None:
      raise ValueError("CFM needs the MI table (mi=)")
    if self.aux != "ssl" and self.masking != "none":
      raise ValueError(f"masking={self.masking!r} needs aux='ssl'")

  @property
  def model_cfg(self):
    return self.base.model_cfg

  @property
  def item_fields(self) -> tuple[FieldSpec, ...]:
    return self.base.item_fields

  def hyper(self) -> dict[str, float]:
    return {"ssl_alpha": self.alpha, "ssl_tau": self.tau, "ssl_value_dropout": self.value_dropout}

  def program_key(self):
    """Less the row name and the traced numbers (α, τ, p)."""
    return dataclasses.replace(self, name="", alpha=0.0, tau=1.0, value_dropout=0.0,
                               base=self.base.program_key())

  # -- parameters ----------------------------------------------------------------------

  def init(self, key, data):
    """{"model": the backbone's variables (the same as `base.init(key)`), "default": one
    learned default vector per item field (masking only), zero-initialised}."""
    params = {"model": self.base.init(key, data)}
    if self.aux == "ssl" and self.masking != "none":
      widths = field_widths(self.item_fields, self.model_cfg.embed_dim)
      params["default"] = {f.name: jnp.zeros((w,), jnp.float32)
                           for f, w in zip(self.item_fields, widths)}
    return params

  # -- augmentation --------------------------------------------------------------------

  def view_masks(self, key, num_items: int) -> tuple[jax.Array, jax.Array]:
    """(mask1_NxF, mask2_NxF): the features each view masks, drawn per item; mask2 is the
    complement of mask1 (RFM: a random half; CFM: the seed and its n highest-MI features)."""
    f_count = len(self.item_fields)
    if self.masking == "rfm":
      u_NxF = jax.random.uniform(key, (num_items, f_count))
      rank_NxF = jnp.argsort(jnp.argsort(u_NxF, axis=1), axis=1)
      mask_NxF = rank_NxF < f_count // 2
    elif self.masking == "cfm":
      mi_FxF = np.asarray(self.mi, np.float32)
      seed_N = jax.random.randint(key, (num_items,), 0, f_count)
      mask_NxF = jax.vmap(lambda s: correlated_feature_mask(mi_FxF, s, self.n))(seed_N)
    else:
      mask_NxF = jnp.zeros((num_items, f_count), bool)
      return mask_NxF, mask_NxF
    return mask_NxF, ~mask_NxF

  def item_vectors(self, params, data, items_N, key, mask_NxF=None, rate=0.0):
    """Item-tower output of `items_N` in training mode (tower dropout on), with the values
    of multi-valued features dropped at `rate` and the features in mask_NxF replaced by
    their default vectors."""
    k_values, k_tower = jax.random.split(key)
    cfg = self.model_cfg
    tower = params["model"]["params"]["item_tower"]
    feats = drop_values(gather_rows(data["item_features"], items_N), self.item_fields, k_values,
                        rate)
    x_NxW = FeatureEncoder(self.item_fields, cfg.embed_dim).apply(
        {"params": tower["encoder"]}, feats)
    if mask_NxF is not None and "default" in params:
      widths = field_widths(self.item_fields, cfg.embed_dim)
      field_W = np.repeat(np.arange(len(widths)), widths)
      default_W = jnp.concatenate([params["default"][f.name] for f in self.item_fields])
      x_NxW = jnp.where(mask_NxF[:, field_W], default_W[None, :], x_NxW)
    return MLP(tuple(cfg.sizes), cfg.dropout).apply({"params": tower["mlp"]}, x_NxW, False,
                                                    rngs={"dropout": k_tower})

  # -- losses --------------------------------------------------------------------------

  def self_loss(self, params, data, items_B, key, hyper) -> jax.Array:
    """L_self over the items `items_B`: -mean_i log softmax_j(cos(z_i, z'_j) / τ)[i]; a
    column holding the same item as row i (a duplicate in the batch) is left out of row i's
    softmax, since it is no negative."""
    k_mask, k_1, k_2 = jax.random.split(key, 3)
    batch = items_B.shape[0]
    if self.aux == "spread_out":
      z_BxD = _unit(self.item_vectors(params, data, items_B, k_1))
      z1_BxD = z2_BxD = z_BxD
    else:
      mask1_BxF, mask2_BxF = self.view_masks(k_mask, batch)
      rate = hyper["ssl_value_dropout"]
      z1_BxD = _unit(self.item_vectors(params, data, items_B, k_1, mask1_BxF, rate))
      z2_BxD = _unit(self.item_vectors(params, data, items_B, k_2, mask2_BxF, rate))
    logits_BxB = (z1_BxD @ z2_BxD.T) / hyper["ssl_tau"]
    labels_B = jnp.arange(batch)
    logits_BxB = losses.logq_correct(logits_BxB, jnp.zeros((batch,), logits_BxB.dtype), items_B,
                                     labels_B)
    return losses.softmax_cross_entropy(logits_BxB, labels_B)

  def sample(self, key, data, epoch, num_steps, batch_size):
    return self.base.sample(key, data, epoch, num_steps, batch_size)

  def loss(self, params, batch_idx_B, data, key, epoch):
    """L_main (the backbone's loss, same key, so α = 0 gives exactly the backbone's loss)
    + α·L_self; aux holds both terms."""
    hyper = data.get("hyper") or self.hyper()
    main_data = data
    if self.main_dropout:
      main_data = {**data, "item_features": drop_values(
          data["item_features"], self.item_fields, jax.random.fold_in(key, 2),
          hyper["ssl_value_dropout"])}
    main, _ = self.base.loss(params["model"], batch_idx_B, main_data, key, epoch)
    if self.aux == "none":
      return main, {"main": main}
    k_items, k_self = jax.random.split(jax.random.fold_in(key, 1))
    if self.ssl_items == "batch":
      items_B = data["train_item"][batch_idx_B]
    else:
      num_items = data["item_counts"].shape[0]
      items_B = jax.random.randint(k_items, batch_idx_B.shape, 0, num_items)
    l_self = self.self_loss(params, data, items_B, k_self, hyper)
    return main + hyper["ssl_alpha"] * l_self, {"main": main, "self": l_self}

  def serve(self, params, data):
    """The backbone's serving: no augmentation, default vectors unused."""
    return self.base.serve(params["model"], data)


def _unit(x_NxD):
  return x_NxD * jax.lax.rsqrt(jnp.sum(x_NxD ** 2, axis=-1, keepdims=True) + 1e-12)


# -- training on a fraction of the data (RQ2) ----------------------------------------------

def _feistel(x, seed, half_bits: int):
  """A 4-round Feistel permutation of [0, 2^(2·half_bits)) keyed by `seed` (uint32)."""
  mask = jnp.uint32((1 << half_bits) - 1)
  left, right = x >> half_bits, x & mask
  for r in range(4):
    round_key = lowbias32(seed ^ jnp.uint32((0x9E3779B9 * (r + 1)) & 0xFFFFFFFF))
    left, right = right, left ^ (lowbias32(right ^ round_key) & mask)
  return (left << half_bits) | right


def subset_examples(seed, positions, num_examples: int) -> jax.Array:
  """Example indices of `positions` under a seeded pseudo-random bijection of
  [0, num_examples): positions 0..m-1 name a uniform-looking m-subset of the examples, the
  same for every call with that seed (a Feistel permutation with cycle walking, a few
  integer ops per position; jittable and vmappable, `seed` may be traced).

  Args:
    seed: uint32 scalar.
    positions: int array, values in [0, num_examples).
    num_examples: N >= 1, static.

  Returns:
    int32, the shape of `positions`.
  """
  if num_examples < 1:
    raise ValueError(f"num_examples must be >= 1, got {num_examples}")
  bits = max(2, math.ceil(math.log2(num_examples)))
  bits += bits % 2
  seed = jnp.asarray(seed, jnp.uint32)
  x = _feistel(jnp.asarray(positions).astype(jnp.uint32), seed, bits // 2)
  n = jnp.uint32(num_examples)
  x = jax.lax.while_loop(lambda x: jnp.any(x >= n),
                         lambda x: jnp.where(x >= n, _feistel(x, seed, bits // 2), x), x)
  return x.astype(jnp.int32)


_SEED_SCALE = float(2 ** 24)


@dataclasses.dataclass(frozen=True)
class TrainSubset:
  """`base` trained on `size` of the N training examples, a subset drawn per trial seed.

  The subset is positions 0..size-1 of a seeded bijection of the examples
  (`subset_examples`). Its seed is drawn from the trial key at init and kept in the
  parameters ("subset_seed", a float in [0, 1) holding 24 random bits, frozen through
  `update_mask`), since `sample` sees only the epoch's key. Each epoch draws the usual
  N // batch_size batches: a fresh permutation of [0, N) taken modulo `size`, so every
  subset example is drawn ⌊N/size⌋ or ⌈N/size⌉ times per epoch in shuffled order (the
  same number of steps for every fraction). `size` is a traced `hyper` value, so all
  fractions share one compiled program. The base must sample by permutation of the
  training examples (the two-tower and SSL methods do). Evaluation is untouched.
  """

  base: Any
  fraction: float
  size: int  # examples in the subset, round(fraction · N)

  def __post_init__(self):
    if not (isinstance(self.fraction, (int, float)) and 0 < self.fraction <= 1):
      raise ValueError(f"train_fraction must lie in (0, 1], got {self.fraction!r}")
    if not 1 <= self.size < _SEED_SCALE:
      raise ValueError(f"the subset must hold 1 to {int(_SEED_SCALE) - 1} examples (exact as "
                       f"a float32 hyper value), got {self.size}")

  @property
  def name(self):
    return self.base.name

  @property
  def model_cfg(self):
    return self.base.model_cfg

  def program_key(self):
    return dataclasses.replace(self, base=_program_key(self.base), fraction=1.0, size=1)

  def hyper(self):
    base = self.base.hyper() if hasattr(self.base, "hyper") else {}
    return {**base, "train_subset_size": float(self.size)}

  def init(self, key, data):
    bits = jax.random.bits(jax.random.fold_in(key, 0x5B5E7), (), jnp.uint32) >> 8
    return {"model": self.base.init(key, data),
            "subset_seed": bits.astype(jnp.float32) / jnp.float32(_SEED_SCALE)}

  def subset_seed(self, params) -> jax.Array:
    return (params["subset_seed"] * jnp.float32(_SEED_SCALE)).astype(jnp.uint32)

  def update_mask(self, params, epoch):
    if hasattr(self.base, "update_mask"):
      model = self.base.update_mask(params["model"], epoch)
    else:
      model = jax.tree.map(lambda _: jnp.bool_(True), params["model"])
    return {"model": model, "subset_seed": jnp.bool_(False)}

  def sample(self, key, data, epoch, num_steps, batch_size):
    return self.base.sample(key, data, epoch, num_steps, batch_size)

  def examples(self, params, batch, data):
    """The training examples behind a batch of the base's sample (indices in [0, N))."""
    hyper = data.get("hyper") or self.hyper()
    size = hyper["train_subset_size"].astype(jnp.int32) if "hyper" in data else self.size
    return subset_examples(self.subset_seed(params), batch % size, data["train_user"].shape[0])

  def loss(self, params, batch, data, key, epoch):
    return self.base.loss(params["model"], self.examples(params, batch, data), data, key, epoch)

  def serve(self, params, data):
    return self.base.serve(params["model"], data)


def with_train_fraction(method, fraction, num_train: int):
  """`method` itself for fraction 1, else wrapped in `TrainSubset`."""
  if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
    raise ValueError(f"train_fraction must lie in (0, 1], got {fraction!r}")
  if fraction == 1:
    return method
  return TrainSubset(method, float(fraction), max(1, int(round(fraction * num_train))))
