"""lira-jax: membership-inference auditing with hundreds of shadow models trained at once in JAX."""

__version__ = "0.1.0"
