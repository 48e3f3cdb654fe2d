"""Training losses and long-tail corrections (pure JAX).

Every loss returns the mean over the batch of a per-example weighted softmax cross-entropy;
the long-tail methods differ in the logits they feed it (logit adjustment, logQ correction)
and in the per-example weights (class-balanced weights).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ltbench.checks import expect_shape as _expect_shape


def _masked_value(dtype):
  # Finite rather than -inf so that gradients through where() and logsumexp stay finite.
  return jnp.finfo(dtype).min / 2


def softmax_cross_entropy(logits_BxI, labels_B, weights_B=None):
  """Weighted softmax cross-entropy, averaged over the batch.

  Args:
    logits_BxI: float logits, one row per example.
    labels_B: int index of the correct column of each row.
    weights_B: optional float per-example weights; None means all ones.

  Returns:
    Scalar mean over B of w_b * (logsumexp(logits_b) - logits_b[label_b]); the mean
    divides by B, not by the sum of the weights.
  """
  logits_BxI = jnp.asarray(logits_BxI)
  labels_B = jnp.asarray(labels_B)
  _expect_shape("logits_BxI", logits_BxI, (None, None))
  batch = logits_BxI.shape[0]
  _expect_shape("labels_B", labels_B, (batch,))
  if not jnp.issubdtype(labels_B.dtype, jnp.integer):
    raise ValueError(f"labels_B must be integer, got {labels_B.dtype}")
  lse_B = jax.nn.logsumexp(logits_BxI, axis=-1)
  label_logit_B = jnp.take_along_axis(logits_BxI, labels_B[:, None], axis=-1)[:, 0]
  loss_B = lse_B - label_logit_B
  if weights_B is not None:
    weights_B = jnp.asarray(weights_B)
    _expect_shape("weights_B", weights_B, (batch,))
    loss_B = weights_B * loss_B
  return jnp.mean(loss_B)


def logit_adjustment(logits, log_prior, weight):
  """Adds weight * log prior to the logits (logit-adjusted loss / post-hoc correction).

  A positive weight during training (loss adjustment) or a negative weight at inference
  (post-hoc adjustment) shifts the decision boundary towards tail items.

  Args:
    logits: float logits [..., I], items on the last axis.
    log_prior: float log item prior [I], e.g. from `log_prior`.
    weight: scalar tau.

  Returns:
    logits + weight * log_prior, broadcast over the leading axes.

  References:
    Menon et al., "Long-tail learning via logit adjustment", ICLR 2021.
  """
  logits = jnp.asarray(logits)
  log_prior_I = jnp.asarray(log_prior)
  if logits.ndim < 1:
    raise ValueError(f"logits must have an item axis, got shape {tuple(logits.shape)}")
  _expect_shape("log_prior", log_prior_I, (logits.shape[-1],))
  # Explicit broadcast: callers may run with jax_numpy_rank_promotion="raise".
  return logits + weight * jnp.broadcast_to(log_prior_I, logits.shape)


def log_prior(counts_I, eps=1e-12):
  """Log of the empirical item prior, computed on training counts.

  Args:
    counts_I: non-negative training interaction count of each item.
    eps: floor on the counts so that unseen items get a finite log prior.

  Returns:
    float32 [I]: log(max(counts, eps) / sum(counts)).
  """
  counts_I = jnp.asarray(counts_I, jnp.float32)
  _expect_shape("counts_I", counts_I, (None,))
  return jnp.log(jnp.maximum(counts_I, eps) / jnp.sum(counts_I))


def class_balanced_weights(counts, beta):
  """Per-item weights inversely proportional to the effective number of samples.

  Items absent from the training data (count 0) get the weight of a single-sample item.

  Args:
    counts: numpy or jax array [I] of training counts per item.
    beta: float in [0, 1); 0 gives uniform weights, values near 1 approach inverse
      frequency.

  Returns:
    jax float32 [I]: (1 - beta) / (1 - beta**max(count, 1)), normalised to mean 1.

  References:
    Cui et al., "Class-balanced loss based on effective number of samples", CVPR 2019.
  """
  beta = float(beta)
  if not 0.0 <= beta < 1.0:
    raise ValueError(f"beta must be in [0, 1), got {beta}")
  counts_I = jnp.asarray(counts, jnp.float32)
  _expect_shape("counts", counts_I, (None,))
  if counts_I.shape[0] == 0:
    raise ValueError("counts must contain at least one item, got shape (0,)")
  n_I = jnp.maximum(counts_I, 1.0)
  # 1 - beta**n as -expm1(n log beta): the naive float32 form loses most digits for beta
  # close to 1. log(0) = -inf gives 1 - 0**n = 1, as required.
  log_beta = math.log(beta) if beta > 0.0 else -math.inf
  weights_I = (1.0 - beta) / -jnp.expm1(n_I * log_beta)
  return weights_I / jnp.mean(weights_I)


def logq_correct(logits_BxC, log_q_C, cand_C=None, labels_B=None):
  """Sampled-softmax logits: subtracts each candidate column's log sampling probability and,
  when candidate ids are given, masks accidental hits (a column other than row b's label
  that holds the same item as the label).

  Args:
    logits_BxC: float scores of B rows against C sampled candidates.
    log_q_C: float log probability that each candidate is sampled.
    cand_C: optional int item id of each candidate column.
    labels_B: int label column of each row (required with cand_C).

  Returns:
    float [B, C] corrected logits.

  References:
    Yi et al., "Sampling-bias-corrected neural modeling for large corpus item
    recommendations", RecSys 2019.
  """
  logits_BxC = jnp.asarray(logits_BxC) - jnp.asarray(log_q_C)[None, :]
  if cand_C is None:
    return logits_BxC
  if labels_B is None:
    raise ValueError("logq_correct needs labels_B to mask accidental hits")
  num_cand = logits_BxC.shape[1]
  same_BxC = cand_C[None, :] == cand_C[labels_B][:, None]
  hits_BxC = same_BxC & (jnp.arange(num_cand)[None, :] != labels_B[:, None])
  return jnp.where(hits_BxC, _masked_value(logits_BxC.dtype), logits_BxC)


def in_batch_softmax_logq(user_BxD, item_BxD, log_q_B, item_ids_B=None, weights_B=None,
                          temperature=1.0):
  """In-batch sampled softmax with logQ correction.

  Row b scores user b against every item of the batch; its label is column b. Subtracting
  the log sampling probability of each column corrects the popularity bias of in-batch
  negatives.

  Args:
    user_BxD: float user embeddings.
    item_BxD: float embeddings of each example's positive item.
    log_q_B: float log probability that each item appears in a batch.
    item_ids_B: optional int item ids; when given, a column j != b holding the same item
      as row b (an accidental hit) is masked out of row b.
    weights_B: optional float per-example weights.
    temperature: positive scalar dividing the dot products.

  Returns:
    Scalar weighted mean cross-entropy, as in `softmax_cross_entropy`.

  References:
    Yi et al., "Sampling-bias-corrected neural modeling for large corpus item
    recommendations", RecSys 2019.
  """
  user_BxD = jnp.asarray(user_BxD)
  item_BxD = jnp.asarray(item_BxD)
  log_q_B = jnp.asarray(log_q_B)
  _expect_shape("user_BxD", user_BxD, (None, None))
  batch, dim = user_BxD.shape
  _expect_shape("item_BxD", item_BxD, (batch, dim))
  _expect_shape("log_q_B", log_q_B, (batch,))
  if isinstance(temperature, (int, float)) and not temperature > 0:
    raise ValueError(f"temperature must be positive, got {temperature}")
  labels_B = jnp.arange(batch, dtype=jnp.int32)
  if item_ids_B is not None:
    item_ids_B = jnp.asarray(item_ids_B)
    _expect_shape("item_ids_B", item_ids_B, (batch,))
  logits_BxB = logq_correct(user_BxD @ item_BxD.T / temperature, log_q_B, item_ids_B, labels_B)
  return softmax_cross_entropy(logits_BxB, labels_B, weights_B)


def sampled_softmax_logq(user_BxD, pos_item_BxD, neg_item_NxD, log_q_pos_B, log_q_neg_N,
                         pos_ids_B=None, neg_ids_N=None, weights_B=None):
  """Sampled softmax over the positive and N shared negatives, with logQ correction.

  Args:
    user_BxD: float user embeddings.
    pos_item_BxD: float embeddings of each example's positive item.
    neg_item_NxD: float embeddings of the negatives, shared by all rows.
    log_q_pos_B: float log sampling probability of each positive.
    log_q_neg_N: float log sampling probability of each negative.
    pos_ids_B: optional int ids of the positives; give together with neg_ids_N.
    neg_ids_N: optional int ids of the negatives; a negative equal to a row's positive
      (an accidental hit) is masked out of that row.
    weights_B: optional float per-example weights.

  Returns:
    Scalar weighted mean cross-entropy over logits [u.v_pos - logq_pos,
    u.v_neg - logq_neg] with label 0, as in `softmax_cross_entropy`.

  References:
    Yi et al., "Sampling-bias-corrected neural modeling for large corpus item
    recommendations", RecSys 2019.
  """
  user_BxD = jnp.asarray(user_BxD)
  pos_item_BxD = jnp.asarray(pos_item_BxD)
  neg_item_NxD = jnp.asarray(neg_item_NxD)
  log_q_pos_B = jnp.asarray(log_q_pos_B)
  log_q_neg_N = jnp.asarray(log_q_neg_N)
  _expect_shape("user_BxD", user_BxD, (None, None))
  batch, dim = user_BxD.shape
  _expect_shape("pos_item_BxD", pos_item_BxD, (batch, dim))
  _expect_shape("neg_item_NxD", neg_item_NxD, (None, dim))
  num_neg = neg_item_NxD.shape[0]
  _expect_shape("log_q_pos_B", log_q_pos_B, (batch,))
  _expect_shape("log_q_neg_N", log_q_neg_N, (num_neg,))
  if (pos_ids_B is None) != (neg_ids_N is None):
    raise ValueError("pos_ids_B and neg_ids_N must be given together, got only "
                     f"{'pos_ids_B' if neg_ids_N is None else 'neg_ids_N'}")
  pos_logit_B = jnp.sum(user_BxD * pos_item_BxD, axis=-1) - log_q_pos_B
  neg_logits_BxN = user_BxD @ neg_item_NxD.T - log_q_neg_N[None, :]
  if pos_ids_B is not None:
    pos_ids_B = jnp.asarray(pos_ids_B)
    neg_ids_N = jnp.asarray(neg_ids_N)
    _expect_shape("pos_ids_B", pos_ids_B, (batch,))
    _expect_shape("neg_ids_N", neg_ids_N, (num_neg,))
    hits_BxN = pos_ids_B[:, None] == neg_ids_N[None, :]
    neg_logits_BxN = jnp.where(hits_BxN, _masked_value(neg_logits_BxN.dtype), neg_logits_BxN)
  logits_BxK = jnp.concatenate([pos_logit_B[:, None], neg_logits_BxN], axis=-1)
  labels_B = jnp.zeros((batch,), jnp.int32)
  return softmax_cross_entropy(logits_BxK, labels_B, weights_B)


def focal_softmax_cross_entropy(logits_BxC, labels_B, gamma, weights_B=None):
  """Softmax focal loss, averaged over the batch: mean_b w_b · −(1 − p_b)^γ · log p_b, with
  p_b the softmax probability of row b's label column.

  The modulating factor (1 − p)^γ is differentiated through, as in Lin et al.; γ = 0 is
  `softmax_cross_entropy`. 1 − p is computed as −expm1(log p), so well-classified rows
  (p near 1) keep their digits.

  Args:
    logits_BxC: float logits, one row per example.
    labels_B: int label column of each row.
    gamma: focusing parameter γ ≥ 0 (scalar; may be traced).
    weights_B: optional float per-example weights; None means all ones.

  Returns:
    Scalar mean over B (divided by B, not by the weights' sum).

  Example:
    >>> float(focal_softmax_cross_entropy(jnp.log(jnp.array([[0.5, 0.5]])), jnp.array([0]), 2.0))
    0.1732...

  References:
    Lin et al., "Focal loss for dense object detection", TPAMI 2018 (IDW's "Focal balance").
  """
  logits_BxC = jnp.asarray(logits_BxC)
  labels_B = jnp.asarray(labels_B)
  _expect_shape("logits_BxC", logits_BxC, (None, None))
  _expect_shape("labels_B", labels_B, (logits_BxC.shape[0],))
  log_p_BxC = jax.nn.log_softmax(logits_BxC, axis=-1)
  log_p_B = jnp.take_along_axis(log_p_BxC, labels_B[:, None], axis=-1)[:, 0]
  loss_B = -jnp.power(-jnp.expm1(log_p_B), gamma) * log_p_B
  if weights_B is not None:
    weights_B = jnp.asarray(weights_B)
    _expect_shape("weights_B", weights_B, (logits_BxC.shape[0],))
    loss_B = weights_B * loss_B
  return jnp.mean(loss_B)


def ldam_margins(counts_I, max_margin):
  """Per-item LDAM margins δ_y ∝ n_y^(−1/4), scaled so the rarest item seen gets max_margin.

  Args:
    counts_I: training count of each item; items with count 0 get the rarest seen item's
      margin (they are never labels, so it does not matter).
    max_margin: the largest margin (LDAM-DRW's max_m, 0.5 by default there); may be traced.

  Returns:
    float32 [I] margins: max_margin · (n_y / min_{n>0} n)^(−1/4).

  References:
    Cao et al., "Learning imbalanced datasets with label-distribution-aware margin loss",
    NeurIPS 2019 (IDW's "Qmargin": δ_y ∝ p(y)^(−1/4)).
  """
  counts_I = jnp.asarray(counts_I, jnp.float32)
  _expect_shape("counts_I", counts_I, (None,))
  n_min = jnp.min(jnp.where(counts_I > 0, counts_I, jnp.inf))
  return max_margin * (jnp.maximum(counts_I, n_min) / n_min) ** -0.25


def subtract_label_margin(logits_BxC, labels_B, margin_B):
  """LDAM's logits: margin_b subtracted from row b's label column only."""
  logits_BxC = jnp.asarray(logits_BxC)
  labels_B = jnp.asarray(labels_B)
  is_label_BxC = jnp.arange(logits_BxC.shape[1])[None, :] == labels_B[:, None]
  return logits_BxC - jnp.where(is_label_BxC, jnp.asarray(margin_B)[:, None], 0.0)


def frequency_balance_weights(counts_I):
  """Eq. 5's per-item weights 1/p(y), scaled to 1/(p(y) · I_seen) with p(y) = n_y / Σn and
  I_seen the items with n > 0, so that the training examples' mean weight is 1 (the scale
  of Eq. 5's 1/p(y) only rescales the loss). Items with count 0 (never labels) get 0.

  References:
    Mehta et al., 2023, Eq. 5; He and Garcia, "Learning from imbalanced data", 2009.
  """
  counts_I = jnp.asarray(counts_I, jnp.float32)
  _expect_shape("counts_I", counts_I, (None,))
  seen_I = counts_I > 0
  p_I = counts_I / jnp.sum(counts_I)
  return jnp.where(seen_I, 1.0 / (jnp.where(seen_I, p_I, 1.0) * jnp.sum(seen_I)), 0.0)


def tau_normalize(item_IxD, tau):
  """τ-normalised item vectors v / ‖v‖^τ (τ = 1: unit vectors, τ = 0: unchanged), the
  post-hoc classifier normalisation of Kang et al. (IDW's "Item Norm (Post-hoc)").
  A zero vector stays zero.

  References:
    Kang et al., "Decoupling representation and classifier for long-tailed recognition",
    ICLR 2020.
  """
  item_IxD = jnp.asarray(item_IxD)
  norm_Ix1 = jnp.linalg.norm(item_IxD, axis=-1, keepdims=True)
  return item_IxD / jnp.where(norm_Ix1 > 0, norm_Ix1, 1.0) ** tau
