"""The audit half (NumPy and SciPy only): scores, attacks, metrics, the printed table and the plots.

It reads the run folder through `lira_jax.store`, never imports `lira_jax.shadow`, and never imports JAX.
"""
