"""Method registry: name -> factory(bundle, model_cfg, **params) -> a `train.Method`."""

from __future__ import annotations

from typing import Callable

from ltbench.errors import SpecError
from ltbench.methods import baselines


def _two_tower(bundle, model_cfg, name="Two-tower"):
  return baselines.TwoTowerSoftmax(name, bundle.user_features.fields, bundle.item_features.fields,
                                   baselines.softmax_objective(), model_cfg)


def _class_balance(bundle, model_cfg, beta=0.999, name="ClassBalance"):
  return baselines.TwoTowerSoftmax(name, bundle.user_features.fields, bundle.item_features.fields,
                                   baselines.class_balanced_objective(beta), model_cfg)


def _logq(bundle, model_cfg, weight=1.0, name="LogQ"):
  return baselines.TwoTowerSoftmax(name, bundle.user_features.fields, bundle.item_features.fields,
                                   baselines.logq_objective(weight), model_cfg)


METHODS: dict[str, Callable] = {
    "two_tower": _two_tower,
    "class_balance": _class_balance,
    "logq": _logq,
}


def build(method: str, bundle, model_cfg, **params):
  if method not in METHODS:
    raise SpecError(f"unknown method {method!r}; valid: {', '.join(sorted(METHODS))}")
  try:
    return METHODS[method](bundle, model_cfg, **params)
  except TypeError as e:
    raise SpecError(f"bad options {params} for method {method!r}: {e}") from None
