import os

# Deterministic, CPU-only, no accidental rank promotion (STYLE.md).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
