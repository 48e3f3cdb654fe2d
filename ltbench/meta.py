"""The shared MAML-style local/global update (MIRec, MeLU and SML reuse it).

A *local* update adapts parameters to one task's support batch with `steps` plain gradient
steps of size `lr`. The *global* loss is the query loss at the adapted parameters, seen as a
function of the parameters before adaptation, so its gradient flows through the local
steps (second order, MAML); `first_order=True` stops the gradient through the inner
gradients (FOMAML), so the adapted parameters move one for one with the originals.

Every function is pure and traceable: jit, vmap (over seeds or tasks) and grad compose with
them, and `lr` may be a traced scalar, so a learning-rate grid shares one compiled program.

The loss convention is the one of `train.Method.loss`, less what a method closes over:

  loss_fn(params, batch) -> (loss, aux)

`loss` is a scalar and `aux` any pytree (`{}` when there is nothing to report). Anything
else the loss needs (data arrays, a PRNG key, the epoch, θ*) is closed over or passed in
`batch`. Example, MeLU's step on a mini-batch of users as tasks (`support_T`, `query_T`
lead with the task axis):

  def melu_loss(params, batch, data, key, epoch):
    def task(support, query):
      return meta.global_loss(functools.partial(rec_loss, data=data), params, support,
                              query, data["hyper"]["local_lr"], mask=DECISION_LAYERS)
    loss_T, _ = jax.vmap(task)(batch["support"], batch["query"])
    return loss_T.mean(), {}

Differentiate the task mean (as the training loop does), not a vmapped gradient: the
gradient of shared parameters is then one sum, not one copy per task.

References: Finn, Abbeel, Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
Networks", ICML 2017 (MAML and its first-order approximation, §5.2).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
LossFn = Callable[[PyTree, PyTree], tuple[jax.Array, PyTree]]


def _checked(loss_fn: LossFn, name: str = "loss_fn") -> LossFn:
  def checked(params, batch):
    out = loss_fn(params, batch)
    if not (isinstance(out, tuple) and len(out) == 2):
      raise ValueError(f"{name} must return (loss, aux), got {type(out).__name__}; return "
                       "(loss, {}) when there is nothing to report")
    if jnp.ndim(out[0]) != 0:
      raise ValueError(f"{name} must return a scalar loss, got shape {jnp.shape(out[0])}; "
                       "average over the batch")
    return out
  return checked


def _leaf_masks(mask: PyTree | None, params: PyTree) -> list:
  """One entry per leaf of `params`: a Python bool (static) or a boolean array."""
  leaves, treedef = jax.tree.flatten(params)
  if mask is None:
    return [True] * len(leaves)
  try:
    full = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), mask, params)
    masks = treedef.flatten_up_to(full)
  except (ValueError, TypeError) as e:
    raise ValueError("mask must be a pytree of booleans with the structure of params, or a "
                     f"prefix of it (one boolean per subtree); {e}") from None
  out = []
  for m, p in zip(masks, leaves):
    if isinstance(m, (bool, np.bool_)):
      out.append(bool(m))
      continue
    if jnp.result_type(m) != jnp.bool_:
      raise ValueError(f"mask leaves must be booleans, got dtype {jnp.result_type(m)}")
    if jnp.ndim(m) != 0 and jnp.shape(m) != jnp.shape(p):
      raise ValueError(f"an array mask leaf must be a scalar or have its parameter's shape "
                       f"{jnp.shape(p)}, got {jnp.shape(m)}")
    out.append(m)
  return out


def local_update(loss_fn: LossFn, params: PyTree, batch: PyTree, lr: float | jax.Array,
                 steps: int = 1, mask: PyTree | None = None, *, first_order: bool = False,
                 batch_per_step: bool = False) -> PyTree:
  """The parameters after `steps` gradient steps θ ← θ − lr·∇θ loss_fn(θ, batch).

  Args:
    loss_fn: `loss_fn(params, batch) -> (loss, aux)`, loss a scalar.
    params: the parameters before adaptation (any pytree of float arrays).
    batch: the support batch, passed to loss_fn as is.
    lr: the local step size, a scalar; may be traced (no recompilation per value).
    steps: how many local steps (a Python int ≥ 0; 0 returns params).
    mask: which leaves adapt, or None for all. A pytree with the structure of params or a
      prefix of it, e.g. {"params": {"tower": False, "decision": True}}. A Python bool
      leaf is static: False leaves are not differentiated in the local step at all (no
      gradient of a frozen embedding table is computed). A boolean array leaf (scalar or
      the parameter's shape) is applied with `where`: the gradient is computed, and
      masked-out entries keep their value exactly.
    first_order: stop the gradient through each inner gradient (FOMAML): d θ'/d θ = I.
    batch_per_step: batch leaves lead with a [steps] axis and step s uses batch[s]
      (different mini-batches, or a PRNG key per step, in the local loop).

  Returns:
    The adapted parameters, with the structure and dtypes of `params`.
  """
  if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
    raise ValueError(f"steps must be a Python int >= 0 (it sets the program's shape), got "
                     f"{steps!r}")
  if jnp.ndim(lr) != 0:
    raise ValueError(f"lr must be a scalar, got shape {jnp.shape(lr)}")
  if batch_per_step:
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(batch)}
    if sizes != {steps}:
      raise ValueError(f"batch_per_step=True needs every batch leaf to lead with the {steps} "
                       f"steps, got leading sizes {sorted(sizes, key=str)}")
  leaves, treedef = jax.tree.flatten(params)
  masks = _leaf_masks(mask, params)
  free = [i for i, m in enumerate(masks) if m is not False]
  if steps == 0 or not free:
    return params
  loss = _checked(loss_fn)

  def loss_of_free(free_leaves, batch):
    merged = list(leaves)
    for i, x in zip(free, free_leaves):
      merged[i] = x
    return loss(jax.tree.unflatten(treedef, merged), batch)

  def step(free_leaves, batch):
    grads, _ = jax.grad(loss_of_free, has_aux=True)(free_leaves, batch)
    if first_order:
      grads = jax.lax.stop_gradient(grads)
    new = []
    for i, p, g in zip(free, free_leaves, grads):
      moved = p - (lr * g).astype(p.dtype)
      new.append(moved if masks[i] is True else
                 jnp.where(jnp.broadcast_to(masks[i], p.shape), moved, p))
    return new, None

  free_leaves = [leaves[i] for i in free]
  if steps == 1:
    free_leaves, _ = step(free_leaves, jax.tree.map(lambda x: x[0], batch)
                          if batch_per_step else batch)
  elif batch_per_step:
    free_leaves, _ = jax.lax.scan(step, free_leaves, batch)
  else:
    free_leaves, _ = jax.lax.scan(lambda f, _: step(f, batch), free_leaves, None, length=steps)
  merged = list(leaves)
  for i, x in zip(free, free_leaves):
    merged[i] = x
  return jax.tree.unflatten(treedef, merged)


def global_loss(loss_fn: LossFn, params: PyTree, support: PyTree, query: PyTree,
                lr: float | jax.Array, steps: int = 1, mask: PyTree | None = None, *,
                first_order: bool = False, query_loss_fn: LossFn | None = None,
                batch_per_step: bool = False) -> tuple[jax.Array, dict]:
  """The query loss at the locally adapted parameters, as a function of `params`.

  L(θ) = query_loss_fn(local_update(loss_fn, θ, support, lr, steps, mask), query). Its
  gradient in θ is MAML's global gradient; with `first_order=True` it is FOMAML's,
  ∇L_q evaluated at the adapted parameters. Leaves that do not adapt (mask) still get a
  global gradient, through the query loss and (second order) through the inner gradient.

  Args:
    loss_fn, params, support, lr, steps, mask, first_order, batch_per_step: as in
      `local_update` (support is its batch).
    query: the query batch.
    query_loss_fn: the global objective if it differs from the local one (SML: L_s on
      D_{t+1} with λ₂‖Θ‖² vs L_r on D_t with λ₁‖Ŵ‖²); default loss_fn.

  Returns:
    (loss, {"adapted": adapted params, "aux": the query loss's aux}), so that it is itself a
    `loss_fn`-style function of params (e.g. a `train.Method.loss`).
  """
  adapted = local_update(loss_fn, params, support, lr, steps, mask, first_order=first_order,
                         batch_per_step=batch_per_step)
  loss, aux = _checked(query_loss_fn or loss_fn, "query_loss_fn")(adapted, query)
  return loss, {"adapted": adapted, "aux": aux}


def global_grad(loss_fn: LossFn, params: PyTree, support: PyTree, query: PyTree,
                lr: float | jax.Array, steps: int = 1, mask: PyTree | None = None,
                **kwargs) -> tuple[tuple[jax.Array, dict], PyTree]:
  """((loss, aux), grads) of `global_loss` in params (keyword options as there); grads has
  the structure of params. Apply them with any optimiser (the loop's ADAM) for the global
  update."""
  return jax.value_and_grad(
      lambda p: global_loss(loss_fn, p, support, query, lr, steps, mask, **kwargs),
      has_aux=True)(params)
