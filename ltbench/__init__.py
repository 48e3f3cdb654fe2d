"""ltbench: seeded, sliced reproductions of long-tail item-recommendation papers in JAX."""

__version__ = "0.1.0"
