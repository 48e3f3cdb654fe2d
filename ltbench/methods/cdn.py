"""Cross Decoupling Network (Zhang et al., KDD 2023) and its ablations, on the shared loop.

CDN = item-side memorisation/generalisation experts with a frequency gate (Eq. 3) +
user-side regularised bilateral branches (Eq. 4) + the γ-adapter (Eq. 6) mixing the two
branches' logits (Eq. 5) in one softmax (Eqs. 7-8); serving uses the main branch (Eq. 9).

One configurable implementation covers the paper's variants:
  CDN  bilateral users + mem/gen experts, γ-adapter, Ω_r regulariser, main-branch serving
  UDN  bilateral users + the two-tower item tower (user-side decoupling only)
  IDN  single user tower + mem/gen experts (item-side decoupling only)
  BDN  CDN with α fixed at 0.5 and both branches at serving
  BBN  bilateral users + one item tower per branch (BBN's separate classifiers), reversed
       sampler, α_t = 1 − (t/T)², both branches at serving (Zhou et al., CVPR 2020, adapted
       as in CDN §4.1)
  Table 5 expert designs: design = mem_gen | head_tail | unbalanced_balanced.

The experts' sizes default to the backbone item tower's parameter budget (§3.3: the item
side "has the same total number of parameters/FLOPs as in the two tower setting");
`expert_sizes=(64,)` gives Appendix B.3's one layer of 64 (docs/decisions.md).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ltbench import losses
from ltbench.data import samplers
from ltbench.data.bundle import FieldSpec
from ltbench.methods.baselines import SOFTMAX, ModelConfig, gather_rows, sampler_log_q
from ltbench.models.cdn import (DESIGNS, BilateralUserTower, BranchItemTowers, ItemExperts,
                                encoded_dim, expert_sizes_for_budget, gate_param_count,
                                mlp_param_count)
from ltbench.models.towers import Tower
from ltbench.train import permutation_batches


def gamma_adapter(t, total_epochs, gamma):
  """α_t = 1 − (t / (γ·T))² (Eq. 6); γ = 1 is BBN's cumulative learning schedule.

  t is the 0-based epoch index (as in BBN's code, so the first epoch is all main branch).
  """
  return 1.0 - (t / (gamma * total_epochs)) ** 2


@dataclasses.dataclass(frozen=True)
class CDNConfig:
  user_side: str = "bilateral"  # "bilateral" (Eq. 4) or "single" (a plain user tower)
  # "experts" (Eq. 3), "mlp" (the two-tower item tower, shared by both branches) or
  # "mlp_per_branch" (one two-tower item tower per branch, BBN)
  item_side: str = "experts"
  design: str = "mem_gen"  # expert design (Table 5): mem_gen | head_tail | unbalanced_balanced
  n_mem: int = 1  # memorisation experts
  n_gen: int = 1  # generalisation experts
  # MLP sizes of every expert, or "budget": the backbone's depth with widths scaled so that
  # all experts plus the gate hold as many parameters as the backbone item tower's MLP
  expert_sizes: str | tuple[int, ...] = "budget"
  gate_input: str = "log"  # gate input: "log" frequency or "bucket"ised + embedded
  adapter: str = "gamma"  # "gamma" (Eq. 6), "cumulative" (BBN, γ = 1) or "fixed" (α = 0.5)
  gamma: float = 5.0  # regulariser rate γ > 1 of the γ-adapter
  regulariser: str = "omega_r"  # regulariser-branch data: "omega_r" (CDN) or "reversed" (BBN)
  serve: str = "main"  # "main" (Eq. 9) or "average" (both branches, 0.5 / 0.5)
  softmax: str = "full"  # "full" over all items, or "in_batch" with logQ (large catalogues)

  def __post_init__(self):
    choices = {"user_side": ("bilateral", "single"),
               "item_side": ("experts", "mlp", "mlp_per_branch"),
               "design": DESIGNS, "gate_input": ("log", "bucket"),
               "adapter": ("gamma", "cumulative", "fixed"),
               "regulariser": ("omega_r", "reversed"), "serve": ("main", "average"),
               "softmax": SOFTMAX}
    for name, valid in choices.items():
      if getattr(self, name) not in valid:
        raise ValueError(f"CDN option {name}={getattr(self, name)!r}; valid: {', '.join(valid)}")
    if self.adapter == "gamma" and self.gamma <= 1.0:
      raise ValueError(f"the γ-adapter needs gamma > 1 (Eq. 6), got {self.gamma}")
    if self.design == "unbalanced_balanced" and self.user_side != "bilateral":
      raise ValueError("the unbalanced/balanced experts need the bilateral user side")
    if self.item_side == "mlp_per_branch" and self.user_side != "bilateral":
      raise ValueError("item_side='mlp_per_branch' needs the bilateral user side")
    if self.expert_sizes != "budget":
      sizes = self.expert_sizes
      if (isinstance(sizes, str) or not sizes
          or not all(isinstance(n, int) and n > 0 for n in sizes)):
        raise ValueError(f"expert_sizes must be 'budget' or positive layer sizes, got {sizes!r}")
      object.__setattr__(self, "expert_sizes", tuple(sizes))


@dataclasses.dataclass(frozen=True)
class CrossDecoupling:
  """A `train.Method` for CDN and its variants (see module docstring)."""

  name: str
  user_fields: tuple[FieldSpec, ...]
  item_fields: tuple[FieldSpec, ...]
  cfg: CDNConfig
  total_epochs: int
  omega_r_cap: int  # count of the most popular tail item (host-computed)
  omega_r_size: int  # |Ω_r| (static)
  model_cfg: ModelConfig = ModelConfig()
  expert_sizes: tuple[int, ...] = ()  # resolved MLP sizes of each expert (`expert_layout`)

  @property
  def bilateral(self) -> bool:
    return self.cfg.user_side == "bilateral"

  @property
  def shared_item_vectors(self) -> bool:
    """Whether both branches see the same item vectors (not so for unbalanced/balanced
    experts or per-branch item towers)."""
    if self.cfg.item_side == "experts":
      return self.cfg.design != "unbalanced_balanced"
    return self.cfg.item_side == "mlp"

  # -- modules -----------------------------------------------------------------------

  @property
  def user_tower(self):
    m = self.model_cfg
    if self.bilateral:
      return BilateralUserTower(self.user_fields, m.embed_dim, tuple(m.sizes[:-1]), m.sizes[-1],
                                m.dropout)
    return Tower(self.user_fields, m.embed_dim, tuple(m.sizes), m.dropout)

  @property
  def item_tower(self):
    m = self.model_cfg
    if self.cfg.item_side == "experts":
      return ItemExperts(self.item_fields, self.cfg.design, self.cfg.n_mem, self.cfg.n_gen,
                         m.embed_dim, self.expert_sizes, self.cfg.gate_input, dropout=m.dropout)
    if self.cfg.item_side == "mlp_per_branch":
      return BranchItemTowers(self.item_fields, m.embed_dim, tuple(m.sizes), m.dropout)
    return Tower(self.item_fields, m.embed_dim, tuple(m.sizes), m.dropout)

  def init(self, key, data):
    k_user, k_item = jax.random.split(key)
    user0 = gather_rows(data["user_features"], jnp.zeros((1,), jnp.int32))
    item0 = gather_rows(data["item_features"], jnp.zeros((1,), jnp.int32))
    if self.cfg.item_side == "experts":
      item_params = self.item_tower.init(k_item, item0, jnp.ones((1,), jnp.int32),
                                         jnp.ones((1,), bool), jnp.float32(1.0))
    else:
      item_params = self.item_tower.init(k_item, item0)
    return {"user": self.user_tower.init(k_user, user0), "item": item_params}

  # -- embeddings ----------------------------------------------------------------------

  def item_embeddings(self, params, data, key=None, items=None):
    """(y_m, y_r, gate) for `items` (default: the whole catalogue): y_m for the main branch
    and serving, y_r for the regulariser branch (equal except for unbalanced/balanced)."""
    train = key is not None
    rngs = {"dropout": key} if train else {}
    tower = self.item_tower
    feats, counts, head = data["item_features"], data["item_counts"], data["head_mask"]
    if items is not None:
      feats, counts, head = gather_rows(feats, items), counts[items], head[items]
    if self.cfg.item_side == "mlp":
      y = tower.apply(params["item"], feats, not train, rngs=rngs)
      return y, y, None
    if self.cfg.item_side == "mlp_per_branch":
      y_m, y_r = tower.apply(params["item"], feats, not train, rngs=rngs)
      return y_m, y_r, None
    log_max = jnp.log1p(data["item_counts"].max().astype(jnp.float32))
    experts_IxKxD, gate_IxK = tower.apply(params["item"], feats, counts, head, log_max,
                                          not train, rngs=rngs)
    if self.cfg.design == "unbalanced_balanced":
      return experts_IxKxD[:, 0], experts_IxKxD[:, 1], gate_IxK
    y_IxD = jnp.einsum("ik,ikd->id", gate_IxK, experts_IxKxD)  # Eq. 3
    return y_IxD, y_IxD, gate_IxK

  def gate_values(self, params, data):
    """G(i) for every item (Figure 3); None without experts."""
    return self.item_embeddings(params, data)[2]

  def trial_extras(self, params_S, data, bundle) -> dict[str, np.ndarray]:
    """Per seed, the mean gate value of each expert over head and over tail items (Fig. 3)."""
    if self.cfg.item_side != "experts" or self.cfg.design == "unbalanced_balanced":
      return {}
    gate_SxIxK = np.asarray(jax.jit(jax.vmap(self.gate_values, in_axes=(0, None)))(params_S, data))
    head = np.asarray(bundle.head_mask)
    return {"gate_head": gate_SxIxK[:, head].mean(1), "gate_tail": gate_SxIxK[:, ~head].mean(1)}

  # -- training ------------------------------------------------------------------------

  def hyper(self) -> dict[str, float]:
    """γ and the horizon T reach the loss as traced values (data["hyper"]), so a γ sweep or
    an epoch budget change reuses one compiled program."""
    return {"gamma": self.cfg.gamma, "total_epochs": float(self.total_epochs)}

  def program_key(self):
    """This method less its row name and traced numbers (γ, T): equal keys share a program."""
    return dataclasses.replace(self, name="", total_epochs=0,
                               cfg=dataclasses.replace(self.cfg, gamma=2.0))

  def alpha(self, epoch, data):
    if self.cfg.adapter == "fixed":
      return jnp.float32(0.5)
    hyper = data.get("hyper") or self.hyper()
    gamma = 1.0 if self.cfg.adapter == "cumulative" else hyper["gamma"]
    return gamma_adapter(epoch.astype(jnp.float32), hyper["total_epochs"], gamma)

  def sample(self, key, data, epoch, num_steps, batch_size):
    k_m, k_r, k_pool = jax.random.split(key, 3)
    main = permutation_batches(k_m, data["train_user"].shape[0], num_steps, batch_size)
    if not self.bilateral:
      return {"m": main}
    if self.cfg.regulariser == "reversed":
      reg = samplers.class_sampler(k_r, data, samplers.reversed_probs(data["item_counts"]),
                                   num_steps, batch_size)
    else:  # Ω_r is redrawn every epoch
      pool = samplers.omega_r(k_pool, data, self.omega_r_cap, self.omega_r_size)
      reg = samplers.batches_from_pool(k_r, pool, num_steps, batch_size)
    return {"m": main, "r": reg}

  def loss(self, params, batch, data, key, epoch):
    k_user, k_item = jax.random.split(key)
    in_batch = self.cfg.softmax == "in_batch"
    user = self.user_tower
    rngs = {"dropout": k_user}
    u_m, i_m = data["train_user"][batch["m"]], data["train_item"][batch["m"]]
    batch_size = u_m.shape[0]
    if not self.bilateral:
      cand_C = i_m if in_batch else None
      y_m_CxD, _, _ = self.item_embeddings(params, data, k_item, cand_C)
      x_BxD = user.apply(params["user"], gather_rows(data["user_features"], u_m), False, rngs=rngs)
      logits_BxC = x_BxD @ y_m_CxD.T
      labels_B = i_m
      if in_batch:
        labels_B = jnp.arange(batch_size)
        logits_BxC = losses.logq_correct(logits_BxC, sampler_log_q("natural", data)[cand_C],
                                         cand_C, labels_B)
      return losses.softmax_cross_entropy(logits_BxC, labels_B), {}
    u_r, i_r = data["train_user"][batch["r"]], data["train_item"][batch["r"]]
    # In-batch: the candidates are both branches' items; full: the whole catalogue.
    cand_C = jnp.concatenate([i_m, i_r]) if in_batch else None
    y_m_CxD, y_r_CxD, _ = self.item_embeddings(params, data, k_item, cand_C)
    # One pass through the shared sub-network f for both branches' users.
    feats = gather_rows(data["user_features"], jnp.concatenate([u_m, u_r]))
    h_2BxH = user.apply(params["user"], feats, False, rngs=rngs, method=user.hidden)
    x_m_BxD = user.apply(params["user"], h_2BxH[:batch_size], method=lambda m, h: m.h_m(h))
    x_r_BxD = user.apply(params["user"], h_2BxH[batch_size:], method=lambda m, h: m.h_r(h))
    alpha = self.alpha(epoch, data)
    if self.shared_item_vectors:
      # y_m = y_r, so Eq. 5 is one product: (α·x_m + (1 − α)·x_r)·y. This halves the B x C
      # work of the mixed logit, the step's largest matmul under a full softmax.
      logits_BxC = (alpha * x_m_BxD + (1.0 - alpha) * x_r_BxD) @ y_m_CxD.T
    else:
      logits_BxC = alpha * x_m_BxD @ y_m_CxD.T + (1.0 - alpha) * x_r_BxD @ y_r_CxD.T  # Eq. 5
    label_m, label_r = i_m, i_r
    logits_m = logits_r = logits_BxC
    if in_batch:
      # A candidate is drawn by either branch's sampler: correct by the mixture probability.
      q_mix_I = 0.5 * (jnp.exp(sampler_log_q("natural", data))
                       + jnp.exp(sampler_log_q(self.cfg.regulariser, data, self.omega_r_cap)))
      log_q_C = jnp.log(q_mix_I)[cand_C]
      label_m = jnp.arange(batch_size)
      label_r = batch_size + jnp.arange(batch_size)
      logits_m = losses.logq_correct(logits_BxC, log_q_C, cand_C, label_m)
      logits_r = losses.logq_correct(logits_BxC, log_q_C, cand_C, label_r)
    loss = (alpha * losses.softmax_cross_entropy(logits_m, label_m)
            + (1.0 - alpha) * losses.softmax_cross_entropy(logits_r, label_r))  # Eq. 8
    return loss, {}

  # -- serving -------------------------------------------------------------------------

  def serve(self, params, data):
    y_m_IxD, y_r_IxD, _ = self.item_embeddings(params, data)
    user = self.user_tower
    feats = data["user_features"]
    if not self.bilateral:
      return user.apply(params["user"], feats), y_m_IxD
    x_m_UxD, x_r_UxD = user.apply(params["user"], feats)
    if self.cfg.serve == "main":  # Eq. 9: the regulariser branch is not used
      return x_m_UxD, y_m_IxD
    # 0.5·x_m·y_m + 0.5·x_r·y_r as one dot product
    return (jnp.concatenate([0.5 * x_m_UxD, 0.5 * x_r_UxD], -1),
            jnp.concatenate([y_m_IxD, y_r_IxD], -1))


def expert_layout(cfg: CDNConfig, item_fields, model_cfg: ModelConfig) -> tuple[int, ...]:
  """The MLP sizes of each expert: `cfg.expert_sizes`, or under "budget" the sizes whose
  experts plus gate come closest to the parameters of the backbone item tower's MLP (the
  embedding tables are the same on both sides). () without experts."""
  if cfg.item_side != "experts":
    return ()
  out_dim = model_cfg.sizes[-1]
  if cfg.expert_sizes != "budget":
    if cfg.expert_sizes[-1] != out_dim:
      raise ValueError(f"the last expert size must be the item vector size {out_dim}, got "
                       f"expert_sizes={cfg.expert_sizes}")
    return cfg.expert_sizes
  num_experts = cfg.n_mem + cfg.n_gen
  if cfg.design == "mem_gen":
    mem = encoded_dim([f for f in item_fields if f.group == "mem"], model_cfg.embed_dim)
    gen = encoded_dim([f for f in item_fields if f.group == "gen"], model_cfg.embed_dim)
    in_dims = [mem] * cfg.n_mem + [gen] * cfg.n_gen
  else:
    in_dims = [encoded_dim(item_fields, model_cfg.embed_dim)] * num_experts
  budget = mlp_param_count(encoded_dim(item_fields, model_cfg.embed_dim), model_cfg.sizes)
  gate = gate_param_count(cfg.design, num_experts, cfg.gate_input)
  return expert_sizes_for_budget(budget, in_dims, model_cfg.sizes, fixed=gate)


def build(name, bundle, model_cfg, total_epochs, **options) -> CrossDecoupling:
  cfg = CDNConfig(**options)
  cap = samplers.omega_r_cap(bundle.item_counts, bundle.head_mask)
  item_fields = bundle.item_features.fields
  return CrossDecoupling(name, bundle.user_features.fields, item_fields, cfg, total_epochs, cap,
                         samplers.omega_r_size(bundle.item_counts, cap), model_cfg,
                         expert_layout(cfg, item_fields, model_cfg))
