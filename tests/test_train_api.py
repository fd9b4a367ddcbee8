"""lira_jax.train_shadows' settings and data digest (no training: tests/e2e/test_own_recipe.py trains)."""

import numpy as np
import pytest

from lira_jax.errors import UserError
from lira_jax.train_api import arrays_digest, settings_tree


def test_settings_by_bare_name_go_to_train_model_data_query_in_that_order_and_dotted_as_given():
    tree = settings_tree(
        {
            "num_models": 8,
            "batch_size": 32,
            "views": ("identity",),
            "width": 4,
            "vary.epochs": [1, 2],
            "limit": np.int64(9),
        }
    )
    assert tree == {
        "train": {"num_models": 8, "batch_size": 32},
        "query": {"views": ["identity"]},
        "model": {"width": 4},
        "vary": {"epochs": [1, 2]},
        "data": {"limit": 9},
    }
    assert type(tree["data"]["limit"]) is int


def test_an_unknown_setting_is_one_user_error():
    with pytest.raises(UserError, match="unknown setting 'num_model'"):
        settings_tree({"num_model": 8})


def test_the_arrays_digest_tells_dtypes_shapes_and_values_apart():
    x, y = np.zeros((4, 2, 2), np.uint8), np.arange(4)
    digests = {
        arrays_digest(x, y),
        arrays_digest(x.astype(np.int8), y),
        arrays_digest(x.reshape(4, 4), y),
        arrays_digest(x, y[::-1]),
    }
    assert len(digests) == 4 and arrays_digest(x, y) == arrays_digest(x.copy(), y.copy())
