"""Method registry: name -> factory(bundle, model_cfg, train_cfg, name=..., **options),
returning a `train.Method`. Spec rows name a method here and pass its options."""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np

from ltbench.data import samplers
from ltbench.errors import SpecError
from ltbench.methods import baselines, cdn, idw, mirec, sequential, ssl


def _softmax(objective_fn):
  """The backbone with an objective; train_fraction < 1 trains on a per-seed subset of the
  training examples (`ssl.TrainSubset`, SSL RQ2)."""
  def factory(bundle, model_cfg, train_cfg, name, softmax="full", train_fraction=1.0, **options):
    method = baselines.TwoTowerSoftmax(name, bundle.user_features.fields,
                                       bundle.item_features.fields, objective_fn(**options),
                                       model_cfg, softmax)
    return ssl.with_train_fraction(method, train_fraction, bundle.num_train)
  return factory


def _ssl(aux: str, main_dropout: bool = False, masking: str = "none"):
  """SSL (Yao et al., CIKM'21) and its baselines on the backbone two-tower (full softmax
  unless softmax="in_batch"). Options: alpha= (α), tau= (τ), value_dropout= (p, rate of
  dropping multi-valued feature values), masking= ("rfm" | "cfm", SSL only), n= (CFM:
  features masked with the seed; default half the features less the seed),
  ssl_items= ("batch" | "uniform"), train_fraction= (RQ2), mi_buckets= (CFM: quantile
  buckets of continuous features for the MI table)."""
  def factory(bundle, model_cfg, train_cfg, name, masking=masking, alpha=ssl.SSLTwoTower.alpha,
              tau=ssl.SSLTwoTower.tau, value_dropout=None, n=None, softmax="full",
              ssl_items="batch", train_fraction=1.0, mi_buckets=10):
    if aux != "ssl" and masking != "none":
      raise ValueError(f"{name!r} ({aux} auxiliary loss) takes no masking")
    if aux == "ssl" and masking not in ("rfm", "cfm"):
      raise ValueError(f"masking must be 'rfm' or 'cfm', got {masking!r}")
    if value_dropout is None:  # spread-out has no augmentation
      value_dropout = 0.0 if aux == "spread_out" else ssl.SSLTwoTower.value_dropout
    if aux == "spread_out" and value_dropout != 0:
      raise ValueError("spread_out has no augmentation: value_dropout must be 0")
    fields = bundle.item_features.fields
    if n is None:
      n = max(len(fields) // 2 - 1, 0)
    mi = None
    if masking == "cfm":
      mi_FxF = ssl.feature_mutual_information(bundle.item_features, bundle.item_counts,
                                              mi_buckets)
      mi = tuple(tuple(float(v) for v in row) for row in mi_FxF)
    base = baselines.TwoTowerSoftmax(name, bundle.user_features.fields, fields,
                                     baselines.softmax_objective(), model_cfg, softmax)
    method = ssl.SSLTwoTower(name, base, aux=aux, masking=masking, alpha=alpha, tau=tau,
                             value_dropout=value_dropout, n=n, mi=mi, main_dropout=main_dropout,
                             ssl_items=ssl_items)
    return ssl.with_train_fraction(method, train_fraction, bundle.num_train)
  return factory


def _two_stage(bundle, model_cfg, train_cfg, name, stage1="natural", stage2="class_balanced",
               switch_epoch=None, reinit_items=False, item_features="all", softmax="full"):
  """Two-stage decoupling; item_features="ids" keeps only the item id (CDN Figure 1)."""
  if item_features not in ("all", "ids"):
    raise ValueError(f"item_features must be 'all' or 'ids', got {item_features!r}")
  item_fields = bundle.item_features.fields
  if item_features == "ids":
    item_fields = tuple(f for f in item_fields if f.group == "mem")
  base = baselines.TwoTowerSoftmax(name, bundle.user_features.fields, item_fields,
                                   baselines.softmax_objective(), model_cfg, softmax)
  cap = samplers.omega_r_cap(bundle.item_counts, bundle.head_mask)
  switch = train_cfg.epochs // 2 if switch_epoch is None else switch_epoch
  return baselines.TwoStage(base, stage1, stage2, switch, reinit_items, cap,
                            samplers.omega_r_size(bundle.item_counts, cap))


def _backbone(bundle, model_cfg, name, softmax="full"):
  return baselines.TwoTowerSoftmax(name, bundle.user_features.fields,
                                   bundle.item_features.fields, baselines.softmax_objective(),
                                   model_cfg, softmax)


def _resample(mode):
  """MIRec §5.2 Over-/Under-sampling: head and tail examples re-balanced to equal mass."""
  def factory(bundle, model_cfg, train_cfg, name, softmax="full"):
    return mirec.Resampled(_backbone(bundle, model_cfg, name, softmax), mode,
                           *mirec.slice_sizes(bundle))
  return factory


def _curriculum(first):
  """MIRec §5.2 Head2Tail / Tail2Head: switch_epoch (default: half the epochs), lr_decay."""
  def factory(bundle, model_cfg, train_cfg, name, switch_epoch=None, lr_decay=0.1,
              softmax="full"):
    switch = train_cfg.epochs // 2 if switch_epoch is None else switch_epoch
    return mirec.Curriculum(_backbone(bundle, model_cfg, name, softmax), first, switch,
                            float(lr_decay), *mirec.slice_sizes(bundle))
  return factory


def _melu(bundle, model_cfg, train_cfg, name, **options):
  """MeLU on the two-tower (options: support=, query=, local_lr=, first_order=)."""
  return mirec.MeLU(_backbone(bundle, model_cfg, name), **options)


def omega_k_cap(bundle) -> int:
  """MIRec's k: the smallest training count among head items."""
  head = bundle.item_counts[bundle.head_mask]
  if head.size == 0:
    raise ValueError("the data have no head items, so Ω(k) has no k")
  return int(head.min())


def _mirec(**preset):
  """MIRec and its ablations (options: see mirec.MIRec; switch_epoch defaults to half the
  epochs, the paper's 100 + 100)."""
  def factory(bundle, model_cfg, train_cfg, name, switch_epoch=None, softmax="full", **options):
    options = {**preset, **options}
    k = omega_k_cap(bundle)
    capped = np.minimum(bundle.item_counts, k)
    if options.get("items", "all") == "head":
      capped = capped * bundle.head_mask
    switch = train_cfg.epochs // 2 if switch_epoch is None else switch_epoch
    return mirec.MIRec(name, _backbone(bundle, model_cfg, name, softmax), switch, k,
                       int(capped.sum()),
                       mirec.slice_sizes(bundle)[0], **options)
  factory.mirec_preset = preset
  factory.serving_only = ("lambda_p",)  # Eq. 9's mix: training never reads it
  return factory


def _two_tower_mix(bundle, model_cfg, train_cfg, name, lambda_p=0.5, softmax="full"):
  """Two-tower₂ (MIRec §5.4): two independent two-towers mixed by λ_p at serving."""
  return mirec.TwoTowerMix(_backbone(bundle, model_cfg, name, softmax), lambda_p)


_two_tower_mix.serving_only = ("lambda_p",)


def _cdn(**preset):
  def factory(bundle, model_cfg, train_cfg, name, **options):
    return cdn.build(name, bundle, model_cfg, train_cfg.epochs, **{**preset, **options})
  factory.preset = preset
  return factory


def _sequential(num_interests: int, sur: bool = False, idw_method: bool = False, **preset):
  """SUR / MUR and the IDW Table 1 rows on SequenceData (`bundle` is a SequenceData,
  `model_cfg` a sequential.SeqModelConfig or None for the paper's; options: temperature=,
  remove_accidental_hits=, the baselines' gamma= / max_margin= / tau=, weighting= for IDW,
  and num_interests= for the M > 1 rows, e.g. Figure 6's sweep; the IDW rows also take
  the `idw.IDWConfig` fields: momentum=, eta=, pretrain_epochs=, ...). The table runner
  ranks them with sequential.rank_eval and trains the IDW rows with idw.run_idw."""
  def factory(bundle, model_cfg, train_cfg, name, num_interests=num_interests, **options):
    if model_cfg is None:
      model_cfg = sequential.SeqModelConfig()
    if not isinstance(model_cfg, sequential.SeqModelConfig):
      raise TypeError(f"the sequential methods need a SeqModelConfig, got "
                      f"{type(model_cfg).__name__}")
    if sur and num_interests != 1:
      raise ValueError(f"SUR has one user vector, got num_interests={num_interests}; use mur")
    model_cfg = dataclasses.replace(model_cfg, num_interests=num_interests)
    if model_cfg.length_strata > 1:
      options["strata"] = sequential.length_strata(bundle.train_pos_E, model_cfg.length_strata,
                                                   bundle.items_SxL.shape[1] - 1)
    if idw_method:
      weighting = options.pop("weighting", "mass")
      schedule = idw.IDWConfig(**{f.name: options.pop(f.name)
                                  for f in dataclasses.fields(idw.IDWConfig) if f.name in options})
      base = sequential.SequentialTwoTower(name, bundle.num_items, model_cfg, **options)
      return idw.IDWTwoTower(name, base, weighting=weighting, schedule=schedule)
    return sequential.SequentialTwoTower(name, bundle.num_items, model_cfg,
                                         **{**preset, **options})
  return factory


METHODS: dict[str, Callable] = {
    "two_tower": _softmax(baselines.softmax_objective),
    "class_balance": _softmax(baselines.class_balanced_objective),  # beta=
    "logq": _softmax(baselines.logq_objective),  # weight=
    "ndp": _two_stage,  # natural -> class-balanced, user tower frozen in stage 2
    "two_stage": _two_stage,  # stage1=, stage2= (CDN Figure 1)
    "cdn": _cdn(),
    "udn": _cdn(item_side="mlp"),
    "idn": _cdn(user_side="single"),
    "bdn": _cdn(adapter="fixed", serve="average"),
    # item_side="mlp" shares one item tower between BBN's branches
    "bbn": _cdn(item_side="mlp_per_branch", adapter="cumulative", regulariser="reversed",
                serve="average"),
    # SSL (Yao et al., CIKM'21): masking="rfm" | "cfm", alpha=, tau=, value_dropout=, n=
    "ssl": _ssl("ssl", masking="cfm"),
    "feature_dropout": _ssl("none", main_dropout=True),  # FD: value dropout on the main task
    "spread_out": _ssl("spread_out"),  # alpha=, tau=; contrast without augmentation
    # MIRec (WWW'21) Table 4-6 rows (two_tower, class_balance and logq as above)
    "oversample": _resample("over"),
    "undersample": _resample("under"),
    "head2tail": _curriculum("head"),  # lr_decay=, switch_epoch=
    "tail2head": _curriculum("tail"),
    "melu": _melu,
    "mirec": _mirec(),  # lambda_c=, lam=, lambda_p=, local_lr=, lr_decay=, meta_group=, ...
    "mirec_m": _mirec(items="head"),  # Ω* and Ω(k) of head items only
    "mirec_c": _mirec(meta_learner=False, lambda_p=0.0),  # Ω* then fine-tune on Ω(k)
    "mirec_nologq": _mirec(lambda_c=0.0),  # MIRec − LogQ
    "two_tower2": _two_tower_mix,  # lambda_p=
    "sur": _sequential(1, sur=True),  # IDW §4.3: one user vector
    "mur": _sequential(5),  # IDW §4.3: M = 5 user vectors
    # IDW Table 1 baselines: MUR (M = 5) with another loss or item normalisation
    "frequency_balance": _sequential(5, objective="frequency_balance"),  # Eq. 5
    "focal_balance": _sequential(5, objective="focal"),  # gamma=
    "qmargin": _sequential(5, objective="qmargin"),  # max_margin=
    "item_norm": _sequential(5, item_norm="train"),  # unit item vectors throughout
    "item_norm_posthoc": _sequential(5, item_norm="post_hoc"),  # tau= at serving only
    "sur_idw": _sequential(1, sur=True, idw_method=True),  # weighting=; idw.run_idw
    "mur_idw": _sequential(5, idw_method=True),
}


def build(method: str, bundle, model_cfg, train_cfg, name: str | None = None, **options):
  if method not in METHODS:
    raise SpecError(f"unknown method {method!r}; valid: {', '.join(sorted(METHODS))}")
  try:
    return METHODS[method](bundle, model_cfg, train_cfg, name=name or method, **options)
  except (TypeError, ValueError) as e:
    raise SpecError(f"bad options {options} for method {method!r}: {e}") from None


def serving_only_params(method: str) -> tuple[str, ...]:
  """The options of `method` that change only how a trained model serves (e.g. MIRec's λ_p
  of Eq. 9), never its training: rows that differ only in these train once
  (`runner.training_key`)."""
  return tuple(getattr(METHODS.get(method), "serving_only", ()))


def resolved_options(method: str, options: dict) -> dict | None:
  """A CDN-family row's full configuration, defaults included (None for other methods), for
  the config key: a changed default then re-keys the rows that rely on it."""
  preset = getattr(METHODS.get(method), "preset", None)
  if preset is None:
    return None
  try:
    return dataclasses.asdict(cdn.CDNConfig(**{**preset, **options}))
  except (TypeError, ValueError) as e:
    raise SpecError(f"bad options {options} for method {method!r}: {e}") from None


def _model_cfg(method):
  return method.model_cfg if hasattr(method, "model_cfg") else method.base.model_cfg


def _item_params(params):
  """The item side of a parameter tree: its "item" subtree (CDN family) or the two-tower's
  "item_tower", found at any depth (methods may wrap the model's variables); None when the
  tree has neither."""
  if not isinstance(params, dict):
    return None
  for name in ("item", "item_tower"):
    if name in params:
      return params[name]
  for sub in params.values():
    found = _item_params(sub)
    if found is not None:
      return found
  return None


def _count(tree) -> tuple[int, int]:
  """(all parameters, those outside embedding tables)."""
  total = dense = 0
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    total += leaf.size
    if getattr(path[-1], "key", None) != "embedding":
      dense += leaf.size
  return total, dense


def param_counts(method, bundle, data) -> dict[str, int]:
  """Parameter counts of a method's model beside the backbone two-tower's (same fields and
  ModelConfig): `item_side` / `backbone_item_tower` count the item side with its embedding
  tables, the `_dense` variants without them, and `total` / `backbone_total` everything.
  A method whose parameters have no recognisable item side gets only the totals."""
  pairs = [("", method)]
  if hasattr(bundle, "user_features"):  # sequence data have no feature two-tower backbone
    pairs.append(("backbone_", baselines.TwoTowerSoftmax(
        "backbone", bundle.user_features.fields, bundle.item_features.fields,
        baselines.softmax_objective(), _model_cfg(method))))
  out = {}
  for prefix, m in pairs:
    params = jax.eval_shape(m.init, jax.random.PRNGKey(0), data)
    out[f"{prefix}total"] = _count(params)[0]
    item_side = _item_params(params)
    if item_side is not None:
      item, item_dense = _count(item_side)
      name = "item_side" if not prefix else "backbone_item_tower"
      out.update({name: item, f"{name}_dense": item_dense})
  return out
