"""SML foundations: period streams, the official release format, the transfer network."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import evaluate
from ltbench.data import periods
from ltbench.data.periods import (PeriodConfig, build_stream, load_official, load_period_stream,
                                  write_official)
from ltbench.errors import DataError
from ltbench.models import sml


def interactions(num_users=30, num_items=80, per_user=12, seed=0):
  """Distinct (user, item) pairs with shuffled, partly tied timestamps."""
  rng = np.random.default_rng(seed)
  user = np.repeat(np.arange(num_users), per_user)
  item = np.concatenate([rng.permutation(num_items)[:per_user] for _ in range(num_users)])
  time = rng.integers(0, 200, user.size)  # ~360 rows on 200 stamps: many ties
  order = rng.permutation(user.size)
  return user[order], item[order], time[order], num_users, num_items


def test_periods_are_time_ordered_disjoint_and_cover():
  user, item, time, U, I = interactions()
  s = build_stream(user, item, time, U, I, PeriodConfig(num_periods=6, num_negatives=None))
  assert s.num_periods == 6 and s.period_sizes().sum() == user.size
  for t in range(5):  # every interaction of D_t strictly before every one of D_{t+1}
    a, b, c = s.period_start_P1[t:t + 3]
    assert s.time_N[a:b].max() < s.time_N[b:c].min()
  # Disjoint and covering: the periods together are exactly the input pairs, once each.
  pairs = sorted(zip(*(np.concatenate(x) for x in zip(*(s.period(t) for t in range(6))))))
  assert pairs == sorted(zip(user.tolist(), item.tolist()))
  assert abs(s.period_sizes() - user.size / 6).max() < 15  # equal counts up to edge ties
  np.testing.assert_array_equal(s.upto(2)[0], s.user_N[:s.period_start_P1[3]])
  # Tested periods: the last quarter; their rows are their own interactions.
  assert list(s.test_periods) == [4, 5]  # round(0.75 * 6) = 4
  u4, i4, neg = s.test_rows(4)
  np.testing.assert_array_equal(u4, s.period(4)[0])
  np.testing.assert_array_equal(i4, s.period(4)[1])
  assert neg is None
  with pytest.raises(ValueError, match="not tested"):
    s.test_rows(3)


def test_time_cut_and_empty_periods():
  time = np.array([0, 1, 2, 10, 11, 100])
  s = build_stream(np.zeros(6, int), np.arange(6), time, 1, 6,
                   PeriodConfig(num_periods=2, cut="time", num_negatives=None))
  np.testing.assert_array_equal(s.period_sizes(), [5, 1])  # split at t = 50
  with pytest.raises(ValueError, match="empty"):
    build_stream(np.zeros(6, int), np.arange(6), time, 1, 6,
                 PeriodConfig(num_periods=5, cut="time", num_negatives=None))


def test_sampled_negatives_never_seen_by_the_user_and_fixed():
  user, item, time, U, I = interactions()
  cfg = PeriodConfig(num_periods=6, num_negatives=20, negative_seed=3)
  s = build_stream(user, item, time, U, I, cfg)
  for t in s.test_periods:
    users, positives, neg_MxK = s.test_rows(t)
    assert neg_MxK.shape == (users.size, 20)
    # The user's items of D_0 .. D_t (the whole test period included) and the pool.
    upto_u, upto_i = s.upto(t)
    pool = set(upto_i.tolist())
    for u, pos, negs in zip(users, positives, neg_MxK):
      seen = set(upto_i[upto_u == u].tolist())
      assert pos in seen and len(set(negs.tolist())) == 20
      assert not seen & set(negs.tolist()) and set(negs.tolist()) <= pool
  again = build_stream(user, item, time, U, I, cfg)
  np.testing.assert_array_equal(again.negatives_MxK, s.negatives_MxK)
  other = build_stream(user, item, time, U, I, PeriodConfig(num_periods=6, num_negatives=20))
  assert (other.negatives_MxK != s.negatives_MxK).any()
  with pytest.raises(ValueError, match=r"user \d+ in period \d+ has only"):
    build_stream(user, item, time, U, I, PeriodConfig(num_periods=6, num_negatives=75))


def test_full_ranking_exclusion_and_returning_users():
  user, item, time, U, I = interactions()
  s = build_stream(user, item, time, U, I,
                   PeriodConfig(num_periods=6, num_negatives=None, test_users="returning"))
  u5, i5, _ = s.test_rows(5)
  earlier = set(s.upto(4)[0].tolist())
  assert u5.size and set(u5.tolist()) <= earlier and u5.size <= s.period_sizes()[5]
  indptr, indices = s.full_exclusion(5)
  upto_u, upto_i = s.upto(5)
  for u in range(U):
    assert set(indices[indptr[u]:indptr[u + 1]].tolist()) == set(upto_i[upto_u == u].tolist())
  # An oracle scorer puts every target first among the non-excluded items.
  user_1xUxD = jax.nn.one_hot(i5, I)[None]
  ranks, ties = evaluate.rank_full(user_1xUxD, jnp.eye(I)[None], i5,
                                   exclude=(indptr, indices, u5), with_ties=True)
  assert (ranks == 0).all() and (ties == 0).all()


def test_official_format_round_trip(tmp_path):
  user, item, time, U, I = interactions()
  s = build_stream(user, item, time, U, I, PeriodConfig(num_periods=6, num_negatives=20))
  write_official(s, tmp_path)
  r = load_official(tmp_path, first_online=s.first_online, first_test=s.first_test)
  assert (r.num_users, r.num_items, r.num_periods) == (U, I, 6)
  for k in ("user_N", "item_N", "period_start_P1", "test_user_M", "test_item_M",
            "test_start_P1", "negatives_MxK"):
    np.testing.assert_array_equal(getattr(r, k), getattr(s, k), err_msg=k)
  np.testing.assert_array_equal(r.time_N, s.period_of_N())  # no timestamps in the release


def test_official_format_hand_written_fixture(tmp_path):
  (tmp_path / "train").mkdir()
  (tmp_path / "test").mkdir()
  np.save(tmp_path / "information.npy", np.array([5, 3, 6]))
  for p, pairs in {"0": [[0, 1], [1, 2]], "1": [[2, 3]], "10": [[0, 4], [1, 5]]}.items():
    np.save(tmp_path / "train" / f"{p}.npy", np.array(pairs))
  np.save(tmp_path / "test" / "10.npy", np.array([[0, 4, 0, 5], [1, 5, 0, 3]]))
  r = load_official(tmp_path, first_online=1, first_test=2)
  assert r.meta["periods"] == ["0", "1", "10"]  # numeric order, not "0", "1", "10" by luck
  np.testing.assert_array_equal(r.period_sizes(), [2, 1, 2])
  users, positives, negatives = r.test_rows(2)
  np.testing.assert_array_equal(negatives, [[0, 5], [0, 3]])


@pytest.mark.parametrize("part, array, message", [
    ("train/1.npy", np.array([[2, 3, 4]]), r"train/1\.npy must be an int array \[n, 2\]"),
    ("train/1.npy", np.array([[2, 9]]), r"train/1\.npy, row 0: item id 9 is outside"),
    ("train/1.npy", np.array([[0.5, 1.0]]), r"train/1\.npy must hold integer ids"),
    ("test/1.npy", np.array([[0, 1, 1]]), r"test/1\.npy, row 0: the positive 1 is also"),
    ("test/1.npy", np.array([[0, 1]]), r"test/1\.npy must be an int array \[n, 2 \+ K\]"),
    ("information.npy", np.array([[5, 3, 6]]), r"information\.npy must be a 1-D array"),
])
def test_official_format_rejects_malformed_files(tmp_path, part, array, message):
  (tmp_path / "train").mkdir()
  (tmp_path / "test").mkdir()
  np.save(tmp_path / "information.npy", np.array([3, 3, 6]))
  np.save(tmp_path / "train" / "0.npy", np.array([[0, 1], [1, 2]]))
  np.save(tmp_path / "train" / "1.npy", np.array([[2, 3]]))
  np.save(tmp_path / "test" / "1.npy", np.array([[2, 3, 0, 5]]))
  np.save(tmp_path / part, array)
  with pytest.raises(DataError, match=message):
    load_official(tmp_path, first_online=0, first_test=1)


def test_official_format_missing_and_unreadable_files(tmp_path):
  (tmp_path / "train").mkdir()
  (tmp_path / "test").mkdir()
  with pytest.raises(DataError, match=r"information\.npy is missing"):
    load_official(tmp_path, 0, 1)
  np.save(tmp_path / "information.npy", np.array([3, 3, 6]))
  np.save(tmp_path / "train" / "0.npy", np.array([[0, 1]]))
  np.save(tmp_path / "train" / "1.npy", np.array([[2, 3]]))
  (tmp_path / "test" / "0.npy").write_bytes(b"not an array")
  with pytest.raises(DataError, match=r"test/1\.npy is missing"):
    load_official(tmp_path, 0, 1)
  (tmp_path / "test" / "1.npy").write_bytes(b"not an array")
  with pytest.raises(DataError, match=r"test/1\.npy is not a readable \.npy array"):
    load_official(tmp_path, 0, 1)


def random_params(init, *args, seed=0):
  """Concrete parameters of the shapes `init` would give, drawn with numpy: flax's own init
  compiles its random draws, which costs seconds on a busy 2-core CPU."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(init, jax.random.PRNGKey(0), *args)["params"]
  return jax.tree.map(lambda x: jnp.asarray(rng.normal(0, 0.3, x.shape), jnp.float32), shapes)


def numpy_transfer(params, w_prev, w_hat, eps):
  """The official ConvTransfer_com forward in plain numpy (conv kernels as loops)."""
  g = lambda x: x / (1 + np.exp(-1.702 * x))
  p = jax.tree.map(np.asarray, params)
  h0 = np.stack([w_prev, w_hat, w_prev * w_hat / (np.linalg.norm(w_prev, axis=1,
                                                                 keepdims=True) + eps)], 1)
  B, _, D = h0.shape
  h1 = np.zeros((B, 10, D))
  for j in range(10):  # H¹_{j,m} = GELU(<F_j, H⁰_{:,m}>)
    h1[:, j] = g(np.einsum("r,brm->bm", p["conv1"]["kernel"][:, j], h0) + p["conv1"]["bias"][j])
  h2 = g(np.einsum("bjm,jk->bkm", h1, p["conv2"]["kernel"]) + p["conv2"]["bias"][None, :, None])
  z = g(h2.reshape(B, 5 * D) @ p["fc"]["kernel"] + p["fc"]["bias"])
  return z @ p["out"]["kernel"] + p["out"]["bias"]


def test_transfer_shapes_sharing_and_numpy_oracle():
  B, D = 7, 16
  rng = np.random.default_rng(0)
  w_prev_BxD, w_hat_BxD = (jnp.asarray(rng.normal(size=(B, D)), jnp.float32) for _ in "ab")
  net = sml.TransferNet()
  params = random_params(net.init, w_prev_BxD, w_hat_BxD)
  count = sum(x.size for x in jax.tree.leaves(params))
  assert count == sml.transfer_param_count(D) == 40 + 55 + (80 * 512 + 512) + (512 * 16 + 16)
  apply = jax.jit(net.apply)  # one compile per shape beats op-by-op dispatch here
  out_BxD = apply({"params": params}, w_prev_BxD, w_hat_BxD)
  assert out_BxD.shape == (B, D)
  # One Θ for every embedding: no parameter depends on B, and each row is transferred on
  # its own (rows 2..4 alone give the same rows as inside the batch of 7).
  key = jax.random.PRNGKey(0)
  other = jax.eval_shape(net.init, key, w_prev_BxD[:3], w_hat_BxD[:3])["params"]
  assert jax.tree.map(jnp.shape, other) == jax.tree.map(jnp.shape, params)
  np.testing.assert_allclose(apply({"params": params}, w_prev_BxD[2:5], w_hat_BxD[2:5]),
                             out_BxD[2:5], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out_BxD, numpy_transfer(params, np.asarray(w_prev_BxD),
                                                     np.asarray(w_hat_BxD), 1e-8),
                             rtol=1e-4, atol=1e-5)
  # The third row is detached from ŵ_t (official code): its gradient flows through rows 1-2.
  def through(w_hat, detach):
    return sml.stack_inputs(w_prev_BxD, w_hat, detach_dot=detach)[:, 2].sum()
  grad = jax.jit(jax.grad(through), static_argnums=1)
  assert not jnp.any(grad(w_hat_BxD, True)) and jnp.all(grad(w_hat_BxD, False) != 0)


def test_separate_user_and_item_transfers_and_mf_score():
  D = 8
  model = sml.SMLTransfer(hidden=32)
  x_3xD, y_5xD = jnp.ones((3, D)), jnp.full((5, D), 0.5)
  params = random_params(model.init, x_3xD, x_3xD, y_5xD, y_5xD)
  assert set(params) == {"user", "item"}
  assert (params["user"]["fc"]["kernel"] != params["item"]["fc"]["kernel"]).any()
  users_3xD, items_5xD = jax.jit(model.apply)({"params": params}, x_3xD, x_3xD, y_5xD, y_5xD)
  assert users_3xD.shape == (3, D) and items_5xD.shape == (5, D)
  users_only = jax.jit(lambda p, a, b: model.apply(p, a, b, method="users"))
  np.testing.assert_allclose(users_only({"params": params}, x_3xD, x_3xD), users_3xD,
                             rtol=1e-6)
  shapes = jax.eval_shape(lambda key: sml.init_mf(key, 4, 6, D), jax.random.PRNGKey(2))
  assert shapes["P"].shape == (4, D) and shapes["Q"].shape == (6, D)
  rng = np.random.default_rng(2)
  mf = {k: jnp.asarray(rng.normal(size=v.shape), jnp.float32) for k, v in shapes.items()}
  all_4x6 = sml.mf_score_all(mf["P"], mf["Q"])
  np.testing.assert_allclose(all_4x6, np.asarray(mf["P"]) @ np.asarray(mf["Q"]).T, rtol=1e-5)
  np.testing.assert_allclose(sml.mf_score(mf["P"][:, None].repeat(6, 1).reshape(-1, D),
                                          jnp.tile(mf["Q"], (4, 1))),
                             all_4x6.reshape(-1), rtol=1e-5)
  with pytest.raises(ValueError, match="must both be"):
    sml.TransferNet().init(jax.random.PRNGKey(0), jnp.ones((2, D)), jnp.ones((3, D)))


def test_returning_filter_keeps_exactly_the_users_seen_earlier():
  from ltbench.data.periods import PeriodStream, returning_users
  # Hand-built: 4 periods of training interactions; periods 2 and 3 tested.
  #   D_0: users 0, 1   D_1: users 2, 0   D_2: users 3, 1, 4   D_3: users 4, 5, 2
  user_N = np.array([0, 1, 2, 0, 3, 1, 4, 4, 5, 2], np.int32)
  item_N = np.arange(10, dtype=np.int32)
  test_user_M = np.array([3, 1, 4, 1, 4, 5, 2, 0], np.int32)  # period 2: 3 rows, 3: 5 rows
  stream = PeriodStream(
      name="hand", num_users=6, num_items=10, user_N=user_N, item_N=item_N,
      time_N=np.arange(10), period_start_P1=np.array([0, 2, 4, 7, 10]), first_online=1,
      first_test=2, test_user_M=test_user_M, test_item_M=np.arange(8, dtype=np.int32),
      test_start_P1=np.array([0, 0, 0, 3, 8]), negatives_MxK=np.arange(16).reshape(8, 2),
      meta={"protocol": "hand"})
  out = returning_users(stream)
  # Period 2: seen {0, 1, 2} -> keeps user 1 only. Period 3: seen {0..4} -> 1, 4, 2, 0.
  u2, i2, n2 = out.test_rows(2)
  u3, i3, n3 = out.test_rows(3)
  np.testing.assert_array_equal(u2, [1])
  np.testing.assert_array_equal(i2, [1])
  np.testing.assert_array_equal(u3, [1, 4, 2, 0])
  np.testing.assert_array_equal(i3, [3, 4, 6, 7])
  np.testing.assert_array_equal(n3, stream.negatives_MxK[[3, 4, 6, 7]])
  assert out.meta["test_users"] == "returning"
  assert out.meta["returning_rows_per_period"] == {2: 1, 3: 4}
  assert "returning only" in out.meta["protocol"]
  # Built streams: the returning rows are the "all" rows of seen users, same negatives.
  user, item, time, U, I = interactions()
  cfg = PeriodConfig(num_periods=6, num_negatives=10)
  every = build_stream(user, item, time, U, I, cfg)
  back = build_stream(user, item, time, U, I, dataclasses.replace(cfg, test_users="returning"))
  for t in every.test_periods:
    ua, ia, na = every.test_rows(t)
    ur, ir, nr = back.test_rows(t)
    seen = np.isin(ua, every.upto(t - 1)[0])
    np.testing.assert_array_equal(ur, ua[seen])
    np.testing.assert_array_equal(ir, ia[seen])
    np.testing.assert_array_equal(nr, na[seen])
  with pytest.raises(ValueError, match="test_users"):
    load_period_stream("official", {"root": "x", "num_periods": 3})
