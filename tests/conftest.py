import os
import tempfile

# Deterministic, CPU-only, no accidental rank promotion (STYLE.md).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache per test session: rows that compile to the same program in
# several specs (e.g. the CDN row of Tables 2, 4, 5 and Figures 1, 3) compile once.
os.environ.setdefault("LTBENCH_JAX_CACHE", tempfile.mkdtemp(prefix="ltbench-jax-cache-"))

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_compilation_cache_dir", os.environ["LTBENCH_JAX_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
