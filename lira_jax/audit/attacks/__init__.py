"""The attacks, one module per family: each turns checked `AttackInputs` into scores float32[T, N].

lira/ (LiRA with its shadow counts: shadow_sets, truncation), rmia, bavaria, base, baselines (loss and
threshold attacks), classifiers (Shokri, ML-Leaks), label_only; equalise and leave_out are the shared
per-target bookkeeping (equal IN/OUT counts, a target's own row taken back out of a set's statistics).
A new attack is a module here and one line of `lira_jax.audit.registry.REGISTRY`.
"""
