"""The studies of `python -m lira_jax.study`: each computes its table and draws its figure."""
