"""Tests for ltbench.losses against plain numpy oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import losses

jax.config.update("jax_numpy_rank_promotion", "raise")

# Jitted once per test module: one compile is much faster on CPU than op-by-op dispatch,
# and it checks that the losses trace.
_softmax_cross_entropy = jax.jit(losses.softmax_cross_entropy)
_in_batch_softmax_logq = jax.jit(losses.in_batch_softmax_logq)
_sampled_softmax_logq = jax.jit(losses.sampled_softmax_logq)


def _np_ce(logits_BxI, labels_B, weights_B=None):
  """Weighted mean softmax cross-entropy in float64; -inf logits are masked out."""
  logits_BxI = logits_BxI.astype(np.float64)
  max_Bx1 = logits_BxI.max(axis=1, keepdims=True)
  lse_B = max_Bx1[:, 0] + np.log(np.exp(logits_BxI - max_Bx1).sum(axis=1))
  loss_B = lse_B - logits_BxI[np.arange(len(labels_B)), labels_B]
  if weights_B is not None:
    loss_B = weights_B * loss_B
  return loss_B.mean()


def test_softmax_cross_entropy_matches_numpy():
  rng = np.random.default_rng(0)
  logits_BxI = rng.normal(size=(6, 9)).astype(np.float32) * 3
  labels_B = rng.integers(0, 9, size=6)
  weights_B = rng.uniform(0.1, 3.0, size=6).astype(np.float32)
  got = _softmax_cross_entropy(logits_BxI, labels_B)
  np.testing.assert_allclose(got, _np_ce(logits_BxI, labels_B), rtol=1e-5)
  got_w = _softmax_cross_entropy(logits_BxI, labels_B, weights_B)
  # The mean is over B, not divided by the sum of the weights.
  np.testing.assert_allclose(got_w, _np_ce(logits_BxI, labels_B, weights_B), rtol=1e-5)
  assert weights_B.sum() != pytest.approx(len(weights_B))


def test_softmax_cross_entropy_rejects_bad_shapes():
  with pytest.raises(ValueError, match=r"labels_B must have shape \(3,\), got \(4,\)"):
    losses.softmax_cross_entropy(np.zeros((3, 5)), np.zeros(4, np.int32))
  with pytest.raises(ValueError, match="weights_B"):
    losses.softmax_cross_entropy(np.zeros((3, 5)), np.zeros(3, np.int32), np.ones(2))


def test_logit_adjustment_broadcasts_over_item_axis():
  rng = np.random.default_rng(1)
  log_prior_I = np.log(rng.dirichlet(np.ones(7))).astype(np.float32)
  logits_BxI = rng.normal(size=(4, 7)).astype(np.float32)
  logits_AxBxI = rng.normal(size=(2, 4, 7)).astype(np.float32)
  np.testing.assert_allclose(losses.logit_adjustment(logits_BxI, log_prior_I, 0.5),
                             logits_BxI + 0.5 * log_prior_I[None, :], rtol=1e-6)
  np.testing.assert_allclose(losses.logit_adjustment(logits_AxBxI, log_prior_I, -1.0),
                             logits_AxBxI - log_prior_I[None, None, :], rtol=1e-6)
  with pytest.raises(ValueError, match=r"log_prior must have shape \(7,\), got \(6,\)"):
    losses.logit_adjustment(logits_BxI, log_prior_I[:6], 1.0)


def test_log_prior_matches_numpy():
  counts_I = np.array([10, 0, 3, 1, 86], np.int64)
  got = losses.log_prior(counts_I)
  want = np.log(np.maximum(counts_I, 1e-12) / counts_I.sum())
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert np.all(np.isfinite(np.asarray(got)))


@pytest.mark.parametrize("beta", [0.0, 0.9, 0.999, 0.9999])
def test_class_balanced_weights_matches_numpy(beta):
  counts_I = np.array([0, 1, 2, 5, 50, 1000, 0])
  n_I = np.maximum(counts_I, 1).astype(np.float64)
  want = (1 - beta) / (1 - beta**n_I)
  want = want / want.mean()
  got = losses.class_balanced_weights(counts_I, beta)
  assert isinstance(got, jax.Array) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(np.mean(got), 1.0, rtol=1e-6)
  # Unseen items weigh as much as single-sample items.
  assert got[0] == got[1] == got[6]


def test_class_balanced_weights_known_values():
  # beta = 0.5: E_n = 2 (1 - 0.5**n) = 1, 1.5, 1.75 for n = 1, 2, 3; weights 1, 2/3, 4/7.
  got = losses.class_balanced_weights(jnp.array([0, 2, 3]), 0.5)
  raw = np.array([1.0, 2 / 3, 4 / 7])
  np.testing.assert_allclose(got, raw / raw.mean(), rtol=1e-6)
  np.testing.assert_allclose(losses.class_balanced_weights(np.array([1, 7, 100]), 0.0),
                             np.ones(3), rtol=0)


@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5, float("nan")])
def test_class_balanced_weights_rejects_bad_beta(beta):
  with pytest.raises(ValueError, match="beta must be in"):
    losses.class_balanced_weights(np.array([1, 2, 3]), beta)


def _np_in_batch_logits(user_BxD, item_BxD, log_q_B, item_ids_B, temperature):
  logits_BxB = user_BxD.astype(np.float64) @ item_BxD.T / temperature - log_q_B[None, :]
  if item_ids_B is not None:
    hits_BxB = (item_ids_B[:, None] == item_ids_B[None, :]) & ~np.eye(len(item_ids_B), dtype=bool)
    logits_BxB = np.where(hits_BxB, -np.inf, logits_BxB)
  return logits_BxB


def _in_batch_inputs():
  rng = np.random.default_rng(2)
  user_BxD = rng.normal(size=(5, 4)).astype(np.float32)
  item_BxD = rng.normal(size=(5, 4)).astype(np.float32)
  log_q_B = np.log(rng.uniform(0.01, 0.5, size=5)).astype(np.float32)
  weights_B = rng.uniform(0.5, 2.0, size=5).astype(np.float32)
  # Items 3 and 7 each appear twice: rows 0/2 and 1/4 are accidental hits of each other.
  item_ids_B = np.array([3, 7, 3, 1, 7])
  return user_BxD, item_BxD, log_q_B, weights_B, item_ids_B


@pytest.mark.parametrize("temperature", [1.0, 0.2])
def test_in_batch_softmax_logq_matches_numpy(temperature):
  user_BxD, item_BxD, log_q_B, weights_B, item_ids_B = _in_batch_inputs()
  labels_B = np.arange(5)
  unmasked = _in_batch_softmax_logq(user_BxD, item_BxD, log_q_B, weights_B=weights_B,
                                    temperature=temperature)
  want_unmasked = _np_ce(_np_in_batch_logits(user_BxD, item_BxD, log_q_B, None, temperature),
                         labels_B, weights_B)
  np.testing.assert_allclose(unmasked, want_unmasked, rtol=1e-5)
  masked = _in_batch_softmax_logq(user_BxD, item_BxD, log_q_B, item_ids_B, weights_B,
                                  temperature)
  want_masked = _np_ce(_np_in_batch_logits(user_BxD, item_BxD, log_q_B, item_ids_B, temperature),
                       labels_B, weights_B)
  np.testing.assert_allclose(masked, want_masked, rtol=1e-5)
  # Removing negatives can only lower the loss; here it must lower it noticeably.
  assert masked < unmasked - 1e-3


def test_in_batch_softmax_logq_gradients_finite_when_masked():
  user_BxD, item_BxD, log_q_B, weights_B, item_ids_B = _in_batch_inputs()

  def loss_fn(user_BxD, item_BxD):
    return losses.in_batch_softmax_logq(user_BxD, item_BxD, log_q_B, item_ids_B, weights_B)

  grad_user_BxD, grad_item_BxD = jax.jit(jax.grad(loss_fn, argnums=(0, 1)))(user_BxD, item_BxD)
  for grad in (grad_user_BxD, grad_item_BxD):
    assert np.all(np.isfinite(np.asarray(grad)))
    assert np.abs(np.asarray(grad)).sum() > 0
  # Identical ids in every row: every off-diagonal entry is masked, so each row's loss is 0.
  same_ids_B = np.zeros(5, np.int32)
  grad_all_masked = jax.jit(jax.grad(
      lambda u: losses.in_batch_softmax_logq(u, item_BxD, log_q_B, same_ids_B)))(user_BxD)
  np.testing.assert_allclose(grad_all_masked, np.zeros_like(user_BxD), atol=1e-6)


def test_sampled_softmax_logq_matches_numpy():
  rng = np.random.default_rng(3)
  user_BxD = rng.normal(size=(4, 3)).astype(np.float32)
  pos_item_BxD = rng.normal(size=(4, 3)).astype(np.float32)
  neg_item_NxD = rng.normal(size=(6, 3)).astype(np.float32)
  log_q_pos_B = np.log(rng.uniform(0.01, 0.5, size=4)).astype(np.float32)
  log_q_neg_N = np.log(rng.uniform(0.01, 0.5, size=6)).astype(np.float32)
  weights_B = rng.uniform(0.5, 2.0, size=4).astype(np.float32)
  pos_ids_B = np.array([10, 11, 12, 13])
  # Negative 1 is row 1's positive and negative 4 is row 3's.
  neg_ids_N = np.array([20, 11, 21, 22, 13, 23])
  pos_logit_B = (user_BxD * pos_item_BxD).sum(axis=1) - log_q_pos_B
  neg_logits_BxN = user_BxD @ neg_item_NxD.T - log_q_neg_N[None, :]
  labels_B = np.zeros(4, np.int64)
  want = _np_ce(np.concatenate([pos_logit_B[:, None], neg_logits_BxN], axis=1), labels_B,
                weights_B)
  got = _sampled_softmax_logq(user_BxD, pos_item_BxD, neg_item_NxD, log_q_pos_B, log_q_neg_N,
                              weights_B=weights_B)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  hits_BxN = pos_ids_B[:, None] == neg_ids_N[None, :]
  assert hits_BxN.sum() == 2
  masked_logits = np.where(hits_BxN, -np.inf, neg_logits_BxN)
  want_masked = _np_ce(np.concatenate([pos_logit_B[:, None], masked_logits], axis=1), labels_B,
                       weights_B)
  got_masked = _sampled_softmax_logq(user_BxD, pos_item_BxD, neg_item_NxD, log_q_pos_B,
                                     log_q_neg_N, pos_ids_B, neg_ids_N, weights_B)
  np.testing.assert_allclose(got_masked, want_masked, rtol=1e-5)
  assert got_masked < got - 1e-3
  grad = jax.jit(jax.grad(lambda u: losses.sampled_softmax_logq(
      u, pos_item_BxD, neg_item_NxD, log_q_pos_B, log_q_neg_N, pos_ids_B, neg_ids_N)))(user_BxD)
  assert np.all(np.isfinite(np.asarray(grad)))


def test_sampled_softmax_logq_requires_both_ids():
  zeros_BxD = np.zeros((2, 3), np.float32)
  with pytest.raises(ValueError, match="together"):
    _sampled_softmax_logq(zeros_BxD, zeros_BxD, zeros_BxD, np.zeros(2), np.zeros(2),
                                pos_ids_B=np.arange(2))


def test_logq_correct_subtracts_log_q_and_masks_accidental_hits():
  rng = np.random.default_rng(7)
  logits = rng.normal(size=(3, 5)).astype(np.float32)
  log_q = rng.normal(size=5).astype(np.float32)
  cand = np.array([4, 1, 4, 2, 1])
  labels = np.array([0, 1, 3])
  out = np.asarray(losses.logq_correct(jnp.asarray(logits), jnp.asarray(log_q),
                                       jnp.asarray(cand), jnp.asarray(labels)))
  expected = logits - log_q[None, :]
  masked = out < -1e30
  # row 0 (item 4): column 2 also holds item 4; row 1 (item 1): column 4; row 2: none
  np.testing.assert_array_equal(np.argwhere(masked), [[0, 2], [1, 4]])
  np.testing.assert_allclose(out[~masked], expected[~masked], rtol=1e-6)
  np.testing.assert_allclose(np.asarray(losses.logq_correct(logits, log_q)), expected, rtol=1e-6)
