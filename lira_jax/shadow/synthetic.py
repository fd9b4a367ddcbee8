"""`synthetic:purchase[:N]`: a SYNTHETIC table in the shape of Purchase-100, generated, never downloaded.

Purchase-100 (Shokri et al. 2017) is 197,324 shoppers x 600 binary features ("bought product j"), in 100
classes found by k-means over those vectors, so each class is a cluster of similar baskets. This generator
copies that structure, not the data: each class has its own favourite products (PURCHASE_FAVOURITES of
the 600, drawn at random) bought with probability PURCHASE_FAVOURITE_RATE, every other product with
PURCHASE_BASE_RATE; an example draws its class uniformly, then each product independently. With these
rates about 6% of the features are 1, and multinomial logistic regression on 10,000 examples fits them
all and classifies about two thirds of 10,000 others (scikit-learn, 2026-12-07): a gap between members
and non-members of the kind Purchase-100's nets show. Fixed seed: the same N gives the same table.
"""

import numpy as np

PURCHASE_FEATURES = 600
PURCHASE_CLASSES = 100
PURCHASE_EXAMPLES = 20_000  # the default N: the size of the target and shadow pools in the literature
PURCHASE_MAX_EXAMPLES = 1_000_000
PURCHASE_FAVOURITES = 30
PURCHASE_FAVOURITE_RATE = 0.25
PURCHASE_BASE_RATE = 0.05
PURCHASE_SEED = 100


def purchase(num_examples: int) -> tuple[np.ndarray, np.ndarray]:
    """(features float32[N, 600] of 0 and 1, labels int64[N] in [0, 100)); the first n examples of any N
    are the same (each example's draws come after the prototypes' and before the next example's)."""
    generator = np.random.default_rng(PURCHASE_SEED)
    favourites = np.stack(
        [generator.choice(PURCHASE_FEATURES, PURCHASE_FAVOURITES, replace=False) for _ in range(PURCHASE_CLASSES)]
    )
    rates = np.full((PURCHASE_CLASSES, PURCHASE_FEATURES), PURCHASE_BASE_RATE)
    np.put_along_axis(rates, favourites, PURCHASE_FAVOURITE_RATE, axis=1)
    labels = np.zeros(num_examples, np.int64)
    features = np.zeros((num_examples, PURCHASE_FEATURES), np.float32)
    for start in range(0, num_examples, 4096):  # in blocks: float64 draws of a block only
        block = generator.random((min(4096, num_examples - start), PURCHASE_FEATURES + 1))
        labels[start : start + len(block)] = (block[:, 0] * PURCHASE_CLASSES).astype(np.int64)
        features[start : start + len(block)] = block[:, 1:] < rates[labels[start : start + len(block)]]
    return features, labels
