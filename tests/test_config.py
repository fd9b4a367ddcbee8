import pytest
from conftest import CONFIGS

from lira_jax import config as config_lib
from lira_jax.config import Config
from lira_jax.errors import UserError


def test_toml_round_trip():
    config = config_lib.with_overrides(Config(), ["train.augment=['flip', 'crop:4']", "model.arch=wrn"])
    assert config_lib.loads(config_lib.to_toml(config)) == config


def test_digits_toml_is_the_default():
    assert config_lib.load(CONFIGS / "digits.toml") == Config()


def test_overrides_parse_toml_values():
    config = config_lib.with_overrides(
        Config(), ["train.num_models=8", "train.epochs=2", "train.learning_rate=1", "data.source=idx:/tmp/x"]
    )
    assert config.train.num_models == 8 and config.train.epochs == 2
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.data.source == "idx:/tmp/x"


def test_identity_ignores_chunking_only():
    base = Config()
    chunked = config_lib.with_overrides(base, ["train.models_per_step=4"])
    assert config_lib.identity(base) == config_lib.identity(chunked)
    assert config_lib.identity(base) != config_lib.identity(config_lib.with_overrides(base, ["train.epochs=3"]))


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("train.nonsense=1", "unknown config key train.nonsense"),
        ("nosection.key=1", "SECTION.KEY|unknown config section"),
        ("train.epochs=two", "train.epochs must be a int"),
        ("train.epochs=1.5", "train.epochs must be a int"),
        ("train.num_models=1", "at least 2"),
        ("train.num_models=7", "must be even"),
        ("train.learning_rate=-1", "must be positive"),
        ("model.arch=vgg", "model.arch must be one of"),
        ("train.models_per_step=128", "models_per_step"),
        ("train.label_smoothing=1.5", r"\[0, 1\)"),
        ("epochs", "KEY=VALUE"),
        ("vary.epochs=[5, 2]", "low <= high"),
        ("vary.learning_rate=[0, 0.1]", "positive"),
        ("vary.label_smoothing=[0, 1]", r"\[0, 1\)"),
        ("vary.augment_strength=[0.5]", r"\[low, high\]"),
        ("query.save_epochs=[3, 1]", "increasing"),
        ("query.save_epochs=[10]", r"\[1, 9\]"),
        ("train.augment_strength=2", r"\[0, 1\]"),
        ("model.norm=layer", "model.norm must be one of"),
    ],
)
def test_bad_overrides(assignment, message):
    with pytest.raises(UserError, match=message):
        config_lib.with_overrides(Config(), [assignment])


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        config_lib.load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\nepochs = 3")
    with pytest.raises(UserError, match="not valid TOML"):
        config_lib.load(broken)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda path: path.name)
def test_every_shipped_config_parses(path):
    config_lib.load(path)
