"""Input checks shared by the pure-function modules (losses, evaluate)."""

from __future__ import annotations


def expect_shape(name, array, shape):
  """Raises ValueError unless `array.shape` matches `shape` (None matches any size)."""
  ok = len(array.shape) == len(shape) and all(
      want is None or got == want for got, want in zip(array.shape, shape))
  if not ok:
    dims = ["?" if s is None else str(s) for s in shape]
    expected = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    raise ValueError(f"{name} must have shape {expected}, got {tuple(array.shape)}")
