"""The same two-tower training step in PyTorch (eager), a peer for the CPU benchmark.

Run only when torch is installed (it is not an ltbench dependency). Same model, shapes and
work as ltbench's Two-tower row and `reference_step.py`: embeddings 64, masked mean over
multi-hot slots, MLP [256, 128, 64] with ReLU and dropout 0.1 in both towers, the item
tower over the whole catalogue every step, full softmax cross-entropy, Adam 1e-3, batch
1024, a fresh permutation per epoch. One seed (PyTorch has no vmap over whole models).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

EMBED = 64
SIZES = (256, 128, 64)
DROPOUT = 0.1


class Tower(nn.Module):
  def __init__(self, fields, arrays):
    super().__init__()
    self.fields = fields
    self.tables = nn.ModuleDict({f.name: nn.Embedding(max(f.vocab, 1), EMBED)
                                 for f in fields if f.kind != "continuous"})
    for t in self.tables.values():
      nn.init.normal_(t.weight, std=0.05)
    width = sum(1 if f.kind == "continuous" else EMBED for f in fields)
    layers = []
    for n, size in enumerate(SIZES):
      layers.append(nn.Linear(width, size))
      if n < len(SIZES) - 1:
        layers += [nn.ReLU(), nn.Dropout(DROPOUT)]
      width = size
    self.mlp = nn.Sequential(*layers)
    # Multi-hot fields: padded indices (clamped) and per-slot mean weights, fixed per row.
    self.feats = {}
    for f in fields:
      x = torch.as_tensor(np.asarray(arrays[f.name]))
      if f.kind == "multi_hot":
        mask = (x >= 0).float()
        self.feats[f.name] = (x.clamp(min=0), mask / mask.sum(-1, keepdim=True).clamp(min=1.0))
      else:
        self.feats[f.name] = x

  def forward(self, rows=None):
    parts = []
    for f in self.fields:
      x = self.feats[f.name]
      if f.kind == "categorical":
        parts.append(self.tables[f.name](x if rows is None else x[rows]))
      elif f.kind == "multi_hot":
        idx, weight = x if rows is None else (x[0][rows], x[1][rows])
        parts.append((self.tables[f.name](idx) * weight[..., None]).sum(1))
      else:
        parts.append((x if rows is None else x[rows])[:, None].float())
    return self.mlp(torch.cat(parts, -1))


def build(bundle, seed: int = 0):
  """(step(batch_idx) -> loss, sample() -> permutation) for one seed."""
  torch.manual_seed(seed)
  users = Tower(bundle.user_features.fields, bundle.user_features.arrays)
  items = Tower(bundle.item_features.fields, bundle.item_features.arrays)
  opt = torch.optim.Adam(list(users.parameters()) + list(items.parameters()), lr=1e-3)
  train_user = torch.as_tensor(bundle.train_user.astype(np.int64))
  train_item = torch.as_tensor(bundle.train_item.astype(np.int64))
  users.train()
  items.train()

  def step(batch_idx):
    logits = users(train_user[batch_idx]) @ items().T
    loss = nn.functional.cross_entropy(logits, train_item[batch_idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss

  def sample():
    return torch.randperm(train_user.shape[0])

  return step, sample
