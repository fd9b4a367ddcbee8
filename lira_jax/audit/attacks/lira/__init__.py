"""LiRA (Carlini et al. 2022): the Gaussian likelihood ratio (lira) and its per-example shadow sets
(shadow_sets: equalised, raw or reference counts; truncation: the reference code's plot.py)."""
