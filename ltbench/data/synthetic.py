"""The embedded synthetic data set: seeded, feature-driven, long-tailed.

Users have categorical features (gender, occupation, region) and a continuous age; items
have genres and tags (multi-hot) and a continuous year. A user's taste is a function of
their features plus noise; an item's appeal is a function of its genres and tags plus a
small item-specific term; the chance that a user picks an item is
softmax(taste · appeal / temperature + log popularity), where popularity is Zipf-like
with a controllable imbalance factor. So content features hold signal for tail items
(they share genres and tags with head items), and popularity alone is a strong baseline,
as in real data.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ltbench.data.bundle import Bundle, Features, FieldSpec
from ltbench.data.features import assemble, pad_lists
from ltbench.data.splits import leave_one_out


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  num_users: int = 800  # users
  num_items: int = 600  # catalogue size
  mean_per_user: float = 30.0  # mean interactions per user (geometric, at least 5)
  imbalance: float = 300.0  # target popularity ratio between the most and least popular item
  num_genres: int = 12  # genre vocabulary (1-3 genres per item)
  num_tags: int = 40  # tag ("title word") vocabulary (2-5 tags per item)
  num_occupations: int = 8  # occupation vocabulary
  num_regions: int = 10  # region vocabulary
  latent: int = 8  # latent taste dimension
  temperature: float = 0.5  # lower = users follow their taste more sharply
  id_noise: float = 0.3  # item-specific appeal not explained by content
  head_fraction: float = 0.2  # top fraction of items by train count that is "head"
  seed: int = 0  # generator seed (fixed per data set, independent of trial seeds)


def generate(cfg: SyntheticConfig = SyntheticConfig()) -> Bundle:
  """Generates the synthetic Bundle (leave-one-out by the generated timestamps)."""
  rng = np.random.default_rng(cfg.seed)
  U, I, L = cfg.num_users, cfg.num_items, cfg.latent

  genre_vec = rng.normal(size=(cfg.num_genres, L))
  tag_vec = rng.normal(size=(cfg.num_tags, L)) * 0.5
  item_genres = [rng.choice(cfg.num_genres, rng.integers(1, 4), replace=False) for _ in range(I)]
  item_tags = [rng.choice(cfg.num_tags, rng.integers(2, 6), replace=False) for _ in range(I)]
  year = rng.normal(size=I)
  appeal = np.stack([genre_vec[g].mean(0) + tag_vec[t].mean(0) for g, t in zip(item_genres, item_tags)])
  appeal += 0.3 * year[:, None] * genre_vec[0] / np.linalg.norm(genre_vec[0])
  appeal += cfg.id_noise * rng.normal(size=(I, L))

  gender = rng.integers(0, 2, U)
  occupation = rng.integers(0, cfg.num_occupations, U)
  region = rng.integers(0, cfg.num_regions, U)
  age = rng.normal(size=U)
  occ_vec = rng.normal(size=(cfg.num_occupations, L))
  gender_vec = rng.normal(size=(2, L)) * 0.5
  taste = occ_vec[occupation] + gender_vec[gender] + 0.3 * age[:, None] * genre_vec[1] \
      + 0.7 * rng.normal(size=(U, L))

  # Zipf-like popularity over a random item order, scaled to the target imbalance factor.
  exponent = np.log(cfg.imbalance) / np.log(I)
  log_pop = -exponent * np.log(np.arange(1, I + 1))[rng.permutation(I)]

  per_user = np.maximum(5, rng.geometric(1.0 / cfg.mean_per_user, U))
  per_user = np.minimum(per_user, I // 2)
  logits_UxI = taste @ appeal.T / (cfg.temperature * np.sqrt(L)) + log_pop[None, :]
  gumbel = rng.gumbel(size=(U, I))
  users, items, times = [], [], []
  for u in range(U):  # Gumbel top-k = sampling without replacement from softmax(logits)
    picked = np.argsort(-(logits_UxI[u] + gumbel[u]))[:per_user[u]]
    users.append(np.full(per_user[u], u))
    items.append(rng.permutation(picked))
    times.append(np.arange(per_user[u]))
  u = np.concatenate(users).astype(np.int32)
  i = np.concatenate(items).astype(np.int32)
  ts = np.concatenate(times)
  part, _, split_kind = leave_one_out(u, ts)

  user_features = Features(
      (FieldSpec("user_id", "categorical", U, "mem"), FieldSpec("gender", "categorical", 2),
       FieldSpec("occupation", "categorical", cfg.num_occupations),
       FieldSpec("region", "categorical", cfg.num_regions), FieldSpec("age", "continuous")),
      {"user_id": np.arange(U, dtype=np.int32), "gender": gender.astype(np.int32),
       "occupation": occupation.astype(np.int32), "region": region.astype(np.int32),
       "age": age.astype(np.float32)})
  item_features = Features(
      (FieldSpec("item_id", "categorical", I, "mem"),
       FieldSpec("tags", "multi_hot", cfg.num_tags),
       FieldSpec("genres", "multi_hot", cfg.num_genres), FieldSpec("year", "continuous")),
      {"item_id": np.arange(I, dtype=np.int32), "tags": pad_lists(item_tags),
       "genres": pad_lists(item_genres), "year": year.astype(np.float32)})
  meta = {"source": "synthetic", "config": dataclasses.asdict(cfg), "split": split_kind,
          "split_seed": cfg.seed}
  return assemble("synthetic", u, i, part, U, I, user_features, item_features,
                  cfg.head_fraction, meta)


@dataclasses.dataclass(frozen=True)
class SparseConfig:
  """A large, very sparse catalogue (Book-Crossing-like) without a dense user × item matrix.

  Each item belongs to one of `num_clusters` latent topics; a user has a sparse taste over
  topics (Dirichlet); an interaction draws a topic from the user's taste, then an item of
  that topic with probability ∝ its Zipf popularity. Content features (category, author,
  publisher, title words) are noisy functions of the topic, so they hold signal for tail
  items; ids hold the rest.
  """

  num_users: int = 2000  # users
  num_items: int = 5000  # catalogue size before dropping never-drawn items
  num_interactions: int = 30000  # draws before de-duplication
  imbalance: float = 2000.0  # target popularity ratio between the most and least popular item
  num_clusters: int = 40  # latent topics
  taste_concentration: float = 0.1  # Dirichlet concentration of a user's topic mix
  num_authors: int = 1200  # author vocabulary (authors write within one topic)
  num_publishers: int = 80  # publisher vocabulary
  num_words: int = 400  # title vocabulary (each topic has its own common words)
  num_countries: int = 12  # user country vocabulary (correlated with taste)
  min_per_user: int = 3  # users get at least this many draws
  head_fraction: float = 0.001  # head = top 0.1% of items (Book-Crossing in CDN)
  seed: int = 0  # generator seed


def generate_sparse(cfg: SparseConfig = SparseConfig(), name: str = "synthetic-sparse") -> Bundle:
  """Generates the sparse Bundle (random leave-one-out: Book-Crossing has no timestamps)."""
  rng = np.random.default_rng(cfg.seed)
  U, I, K = cfg.num_users, cfg.num_items, cfg.num_clusters
  topic = rng.integers(0, K, I)
  exponent = np.log(cfg.imbalance) / np.log(I)
  pop = np.arange(1, I + 1, dtype=np.float64)[rng.permutation(I)] ** -exponent
  # per topic: items sorted, cumulative popularity for inverse-CDF draws
  order = np.lexsort((np.arange(I), topic))
  topic_sorted = topic[order]
  starts = np.searchsorted(topic_sorted, np.arange(K))
  ends = np.searchsorted(topic_sorted, np.arange(K), side="right")
  cum = np.cumsum(pop[order])
  base = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
  topic_mass = np.where(ends > starts, cum[np.maximum(ends - 1, 0)] - base, 0.0)

  country = rng.integers(0, cfg.num_countries, U)
  country_taste = rng.dirichlet(np.full(K, 0.5), cfg.num_countries)
  taste = rng.dirichlet(np.full(K, cfg.taste_concentration), U)
  taste = 0.7 * taste + 0.3 * country_taste[country]
  # Topic choice is weighted by taste × topic mass, so popular topics stay popular.
  weights = taste * topic_mass[None, :]
  weights /= weights.sum(1, keepdims=True)
  activity = rng.lognormal(0.0, 1.0, U)
  per_user = cfg.min_per_user + rng.multinomial(cfg.num_interactions - cfg.min_per_user * U,
                                                activity / activity.sum())
  users = np.repeat(np.arange(U), per_user)
  u_cum = np.cumsum(weights, 1)
  draws_topic = (u_cum[users] < rng.random(users.size)[:, None]).sum(1).clip(0, K - 1)
  target = base[draws_topic] + rng.random(users.size) * topic_mass[draws_topic]
  items = order[np.searchsorted(cum, target).clip(starts[draws_topic], ends[draws_topic] - 1)]
  pairs = np.unique(np.stack([users, items], 1), axis=0)
  users, items = pairs[:, 0], pairs[:, 1]
  keep_user = np.bincount(users, minlength=U) >= 3
  mask = keep_user[users]
  users, items = users[mask], items[mask]
  used_items, items = np.unique(items, return_inverse=True)
  used_users, users = np.unique(users, return_inverse=True)
  part, _, split_kind = leave_one_out(users.astype(np.int32), None, cfg.seed)

  n_items, n_users = len(used_items), len(used_users)
  t = topic[used_items]
  noisy = lambda labels, vocab, p: np.where(rng.random(labels.size) < p, labels,
                                            rng.integers(0, vocab, labels.size))
  author = noisy(t * (cfg.num_authors // K) + rng.integers(0, cfg.num_authors // K, n_items),
                 cfg.num_authors, 0.9)
  publisher = noisy(t % cfg.num_publishers, cfg.num_publishers, 0.6)
  words_per_topic = cfg.num_words // K
  title = [np.unique(np.concatenate([tt * words_per_topic + rng.integers(0, words_per_topic, 2),
                                     rng.integers(0, cfg.num_words, 2)]))
           for tt in t]
  year = rng.normal(size=n_items) + 0.2 * (t % 5)
  age = rng.normal(size=n_users) + 0.3 * (country[used_users] % 3)
  user_features = Features(
      (FieldSpec("user_id", "categorical", n_users, "mem"),
       FieldSpec("country", "categorical", cfg.num_countries), FieldSpec("age", "continuous")),
      {"user_id": np.arange(n_users, dtype=np.int32),
       "country": country[used_users].astype(np.int32), "age": age.astype(np.float32)})
  item_features = Features(
      (FieldSpec("item_id", "categorical", n_items, "mem"),
       FieldSpec("title", "multi_hot", cfg.num_words),
       FieldSpec("author", "categorical", cfg.num_authors),
       FieldSpec("publisher", "categorical", cfg.num_publishers), FieldSpec("year", "continuous")),
      {"item_id": np.arange(n_items, dtype=np.int32), "title": pad_lists(title),
       "author": author.astype(np.int32), "publisher": publisher.astype(np.int32),
       "year": year.astype(np.float32)})
  meta = {"source": "synthetic-sparse (Book-Crossing-like stand-in)",
          "config": dataclasses.asdict(cfg), "split": split_kind, "split_seed": cfg.seed}
  return assemble(name, users.astype(np.int32), items.astype(np.int32), part, n_users, n_items,
                  user_features, item_features, cfg.head_fraction, meta)
