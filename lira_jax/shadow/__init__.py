"""The training half (JAX): data, keep matrix, models, augmentations, the vmapped engine and the trainer.

It writes the run folder through `lira_jax.store` and never imports `lira_jax.audit`.
"""
