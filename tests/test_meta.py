"""ltbench.meta against closed forms (a quadratic, in float64) and explicit loops.

The quadratic L(θ; A, b) = ½ θᵀAθ − bᵀθ (A symmetric) has ∇L = Aθ − b and Hessian A, so with
M = I − αA_s one local step gives θ' = Mθ + αb_s, K steps θ_K = M^K θ + Σ_{j<K} M^j α b_s,
the second-order global gradient is (M^K)ᵀ g_q with g_q = A_q θ_K − b_q, and the
first-order (FOMAML) one is g_q: for K = 1 they differ by exactly −α A_s g_q.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import meta

TOL64 = 1e-6  # the tolerance; these float64 checks agree to ~1e-13


def quad_loss(params, batch):
  theta = jnp.concatenate([params["x"], params["y"]])
  return 0.5 * theta @ batch["A"] @ theta - batch["b"] @ theta, {}


def quad_problem(seed=0, n=4):
  rng = np.random.default_rng(seed)

  def spd():
    q = rng.normal(size=(n, n))
    return q @ q.T / n + np.eye(n)

  theta = rng.normal(size=n)
  support = {"A": spd(), "b": rng.normal(size=n)}
  query = {"A": spd(), "b": rng.normal(size=n)}
  return theta, support, query


def split(theta):
  return {"x": jnp.asarray(theta[:2]), "y": jnp.asarray(theta[2:])}


def flat(params):
  return np.concatenate([np.asarray(params["x"]), np.asarray(params["y"])])


@pytest.mark.parametrize("steps", [1, 3])
def test_second_order_global_gradient_matches_closed_form_eager_and_jitted(steps):
  theta, s, q = quad_problem()
  alpha = 0.1
  m = np.eye(4) - alpha * s["A"]
  theta_k = np.linalg.matrix_power(m, steps) @ theta + sum(
      np.linalg.matrix_power(m, j) @ (alpha * s["b"]) for j in range(steps))
  g_q = q["A"] @ theta_k - q["b"]
  expected = np.linalg.matrix_power(m, steps).T @ g_q
  with jax.enable_x64(True):
    (loss, aux), grads = meta.global_grad(quad_loss, split(theta), s, q, alpha, steps)
    np.testing.assert_allclose(flat(aux["adapted"]), theta_k, rtol=0, atol=TOL64)
    np.testing.assert_allclose(float(loss), 0.5 * theta_k @ q["A"] @ theta_k - q["b"] @ theta_k,
                               rtol=0, atol=TOL64)
    np.testing.assert_allclose(flat(grads), expected, rtol=0, atol=TOL64)
    # jit gives what eager gives (the eager run above is op by op).
    jitted = jax.jit(lambda p, s, q: meta.global_grad(quad_loss, p, s, q, alpha, steps))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
                 jitted(split(theta), s, q), ((loss, aux), grads))


def test_first_order_differs_by_the_hessian_term():
  theta, s, q = quad_problem(seed=1)
  alpha = 0.3
  theta_1 = theta - alpha * (s["A"] @ theta - s["b"])
  g_q = q["A"] @ theta_1 - q["b"]
  with jax.enable_x64(True):
    _, second = meta.global_grad(quad_loss, split(theta), s, q, alpha)
    _, first = meta.global_grad(quad_loss, split(theta), s, q, alpha, first_order=True)
    np.testing.assert_allclose(flat(first), g_q, rtol=0, atol=TOL64)
    np.testing.assert_allclose(flat(second) - flat(first), -alpha * s["A"] @ g_q, rtol=0,
                               atol=TOL64)


@pytest.mark.parametrize("mask", [{"x": True, "y": False},
                                  {"x": np.bool_(True), "y": np.bool_(False)}, "array"])
def test_masked_global_gradient_matches_closed_form(mask):
  # Only x adapts: θ' = θ − αP(A_sθ − b_s), P = diag(1, 1, 0, 0); grad = (I − αA_sP) g_q.
  # y still gets a global gradient, through the query loss and the inner gradient.
  theta, s, q = quad_problem(seed=2)
  alpha = 0.2
  p = np.diag([1.0, 1.0, 0.0, 0.0])
  theta_1 = theta - alpha * p @ (s["A"] @ theta - s["b"])
  g_q = q["A"] @ theta_1 - q["b"]
  with jax.enable_x64(True):
    if mask == "array":
      mask = {"x": jnp.array([True, True]), "y": jnp.bool_(False)}
    (_, aux), grads = meta.global_grad(quad_loss, split(theta), s, q, alpha, mask=mask)
    np.testing.assert_allclose(flat(aux["adapted"]), theta_1, rtol=0, atol=TOL64)
    np.testing.assert_allclose(flat(grads), (np.eye(4) - alpha * s["A"] @ p) @ g_q, rtol=0,
                               atol=TOL64)
    # FOMAML: every leaf gets ∇L_q at θ', frozen ones included (SML's Step 2 for Θ).
    _, first = meta.global_grad(quad_loss, split(theta), s, q, alpha, mask=mask, first_order=True)
    np.testing.assert_allclose(flat(first), g_q, rtol=0, atol=TOL64)


# A small non-linear model for the float32 checks: frozen "embed" table, "decision" layer.

def mlp_loss(params, batch):
  hidden_BxD = jnp.tanh(params["embed"][batch["idx"]])
  pred_B = hidden_BxD @ params["decision"]["w"] + params["decision"]["b"]
  return jnp.mean((pred_B - batch["y"]) ** 2), {"pred": pred_B}


# Test data is numpy: eager jnp ops would each compile a small program.

def mlp_params(seed):
  rng = np.random.default_rng(100 + seed)
  return {"embed": rng.normal(size=(6, 3)).astype(np.float32),
          "decision": {"w": rng.normal(size=3).astype(np.float32), "b": np.float32(0.1)}}


def mlp_batch(seed, batch_size=5):
  rng = np.random.default_rng(seed)
  return {"idx": rng.integers(0, 6, batch_size).astype(np.int32),
          "y": rng.normal(size=batch_size).astype(np.float32)}


def stack(trees):
  return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def at(tree, i):
  return jax.tree.map(lambda x: x[i], tree)


def test_masked_leaves_do_not_move():
  params = mlp_params(0)
  batch = mlp_batch(0)
  # A static mask (Python bools) and an array one (applied with `where`).
  for mask in ({"embed": False, "decision": True}, {"embed": np.bool_(False), "decision": True},
               {"embed": jnp.bool_(False), "decision": jnp.bool_(True)}):
    adapted = jax.jit(lambda p, b: meta.local_update(mlp_loss, p, b, 0.5, steps=2, mask=mask))(
        params, batch)
    np.testing.assert_array_equal(adapted["embed"], params["embed"])
    assert not np.allclose(adapted["decision"]["w"], params["decision"]["w"])
  # A static False leaf is not differentiated at all: no scatter-add for the table's gradient.
  jaxpr = lambda mask: str(jax.make_jaxpr(
      lambda p: meta.local_update(mlp_loss, p, batch, 0.5, mask=mask))(params))
  assert "scatter" not in jaxpr({"embed": False, "decision": True})
  assert "scatter" in jaxpr({"embed": jnp.bool_(False), "decision": True})
  # An element-wise mask: only the rows of item 0 adapt (it is in the batch).
  rows_6x3 = np.broadcast_to((np.arange(6) == batch["idx"][0])[:, None], (6, 3))
  adapted = jax.jit(lambda p, m: meta.local_update(mlp_loss, p, batch, 0.5, mask=m))(
      params, {"embed": rows_6x3, "decision": False})
  moved = np.asarray(adapted["embed"] != params["embed"])
  assert moved[rows_6x3].all() and not moved[~rows_6x3].any()
  np.testing.assert_array_equal(adapted["decision"]["w"], params["decision"]["w"])


def test_several_local_steps_match_an_explicit_loop():
  params = mlp_params(1)
  batches = [mlp_batch(s) for s in range(3)]
  lr = 0.3

  @jax.jit  # one program for all four (eager dispatch would dominate the test's time)
  def run(params, batches):
    def loop(batch_of_step):
      p = params
      for s in range(3):
        g, _ = jax.grad(mlp_loss, has_aux=True)(p, batch_of_step(s))
        p = jax.tree.map(lambda x, gx: x - lr * gx, p, g)
      return p

    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batches)  # traced: no eager op
    return ((meta.local_update(mlp_loss, params, batches[0], lr, steps=3),
             loop(lambda s: batches[0])),
            (meta.local_update(mlp_loss, params, stacked, lr, steps=3, batch_per_step=True),
             loop(lambda s: batches[s])))

  for got, want in run(params, batches):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), got, want)
  assert meta.local_update(mlp_loss, params, batches[0], lr, steps=0) is params


def test_vmap_over_seeds_and_tasks_equals_a_loop():
  mask = {"embed": False, "decision": True}
  grad = lambda p, s, q: meta.global_grad(mlp_loss, p, s, q, 0.2, steps=2, mask=mask)[1]
  params_S = stack([mlp_params(2), mlp_params(3)])
  support_T = stack([mlp_batch(s) for s in range(2)])
  query_T = stack([mlp_batch(s) for s in range(2, 4)])

  def task_mean(p):
    loss_T, _ = jax.vmap(lambda s, q: meta.global_loss(mlp_loss, p, s, q, 0.2, steps=2,
                                                       mask=mask))(support_T, query_T)
    return loss_T.mean()

  # One compiled program per form; the loops reuse `grad`'s (same shapes).
  grad = jax.jit(grad)
  vmapped = jax.jit(jax.vmap(grad, in_axes=(0, None, None)))(params_S, at(support_T, 0),
                                                              at(query_T, 0))
  for s in range(2):
    one = grad(at(params_S, s), at(support_T, 0), at(query_T, 0))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[s], b, rtol=1e-5, atol=1e-6),
                 vmapped, one)
  # Tasks: the gradient of the task mean equals the mean of per-task gradients.
  params = at(params_S, 0)
  per_task = [grad(params, at(support_T, t), at(query_T, t)) for t in range(2)]
  jax.tree.map(lambda a, b, c: np.testing.assert_allclose(a, (b + c) / 2, rtol=1e-5, atol=1e-6),
               jax.jit(jax.grad(task_mean))(params), *per_task)


def test_a_traced_lr_does_not_recompile():
  traces = []

  def step(params, support, query, lr):
    traces.append(1)  # Python side effect: runs once per trace, not per call
    return meta.global_grad(mlp_loss, params, support, query, lr, steps=2,
                            mask={"embed": False, "decision": True})

  params, support, query = mlp_params(4), mlp_batch(20), mlp_batch(21)
  jitted = jax.jit(step)
  outs = [jitted(params, support, query, jnp.float32(lr)) for lr in (0.1, 0.01, 0.3)]
  assert len(traces) == 1
  assert not np.allclose(outs[0][0][0], outs[1][0][0])  # lr reached the program


def test_bad_inputs_say_what_is_wrong():
  params, batch = mlp_params(5), mlp_batch(0)
  with pytest.raises(ValueError, match="steps must be"):
    meta.local_update(mlp_loss, params, batch, 0.1, steps=-1)
  with pytest.raises(ValueError, match="lr must be a scalar"):
    meta.local_update(mlp_loss, params, batch, jnp.ones(2))
  with pytest.raises(ValueError, match=r"must return \(loss, aux\)"):
    meta.local_update(lambda p, b: mlp_loss(p, b)[0], params, batch, 0.1)
  with pytest.raises(ValueError, match="mask must be a pytree"):
    meta.local_update(mlp_loss, params, batch, 0.1, mask={"decision": True})
  with pytest.raises(ValueError, match="lead with the 2 steps"):
    meta.local_update(mlp_loss, params, batch, 0.1, steps=2, batch_per_step=True)
