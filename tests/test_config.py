import dataclasses
import math
import typing

import pytest
from conftest import CONFIGS
from hypothesis import given, settings
from hypothesis import strategies as st

from lira_jax import config as config_lib
from lira_jax import config_checks
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
        ("train.num_models=1", r"train.num_models must be an integer in \[2, "),
        ("train.num_models=7", "must be even"),
        ("train.learning_rate=-1", r"train.learning_rate must be a finite number in \(0, ∞\), got -1.0"),
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
        ("train.learning_rate=nan", r"learning_rate must be a finite number in \(0, ∞\), got nan"),
        ("train.learning_rate=inf", "got inf"),
        ("train.warmup_epochs=nan", r"warmup_epochs must be a finite number in \[0, ∞\)"),
        ("train.warmup_epochs=-inf", "warmup_epochs"),
        ("train.checkpoint_minutes=nan", "checkpoint_minutes must be a finite number"),
        ("train.checkpoint_minutes=inf", "checkpoint_minutes must be a finite number"),
        ("train.dp_noise_multiplier=nan", "dp_noise_multiplier must be a finite number"),
        ("train.dp_noise_multiplier=inf", "dp_noise_multiplier must be a finite number"),
        ("train.dp_clip_norm=inf", "dp_clip_norm must be a finite number"),
        ("train.dp_delta=nan", r"dp_delta must be a finite number in \(0, 1\), got nan"),
        ("train.dp_delta=-5", r"dp_delta must be a finite number in \(0, 1\)"),
        ("train.dp_delta=0", r"\(0, 1\)"),
        ("train.momentum=nan", r"momentum must be a finite number in \[0, 1\)"),
        ("train.weight_decay=-inf", "weight_decay"),
        ("train.keep_probability=nan", "keep_probability"),
        ("model.dropout=nan", "dropout"),
        ("vary.learning_rate=[nan, 0.1]", "vary.learning_rate must be a finite number"),
        ("vary.augment_strength=[0, inf]", "vary.augment_strength must be a finite number"),
        ("train.seed=-1", r"train.seed must be an integer in \[0, 4294967295\]"),
        ("train.seed=4294967296", "train.seed must be an integer in"),
        ("train.epochs=0", r"train.epochs must be an integer in \[1, 2147483647\]"),
        ("train.epochs=99999999999999999999999", "train.epochs must be an integer in"),
        ("train.batch_size=2147483648", "train.batch_size must be an integer in"),
        ("data.limit=-1", r"data.limit must be an integer in \[0, "),
        ("model.width=0", "model.width must be an integer in"),
        ("model.widen=0", r"model.widen must be an integer in \[1, "),
        ("model.depth=-2", "model.depth must be an integer in"),
        ("query.batch_size=0", "query.batch_size"),
        ("query.save_epochs=[0]", "query.save_epochs must be an integer in"),
        ("vary.epochs=[0, 3]", "vary.epochs must be an integer in"),
    ],
)
def test_bad_overrides(assignment, message):
    with pytest.raises(UserError, match=message):
        config_lib.with_overrides(Config(), [assignment])


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["model.arch=wrn", "model.depth=29"], "6k \\+ 4"),
        (["model.arch=wrn", "model.depth=4"], "6k \\+ 4 with k >= 1"),
        (["model.arch=wrn", "model.depth=-2"], "model.depth must be an integer in"),
    ],
)
def test_wrn_depth(assignments, message):
    with pytest.raises(UserError, match=message):
        config_lib.with_overrides(Config(), assignments)
    config_lib.with_overrides(Config(), ["model.arch=wrn", "model.depth=16"])


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


# Property tests: whatever a user writes, the config is valid (and survives a TOML round trip) or refused
# with a UserError; never another exception, never a non-finite or out-of-range number inside.

FLOAT_KEYS = [
    f"{section}.{field.name}"
    for section, section_type in config_lib.SECTIONS.items()
    for field in dataclasses.fields(section_type)
    if field.type is float
]
INT_KEYS = [
    f"{section}.{field.name}"
    for section, section_type in config_lib.SECTIONS.items()
    for field in dataclasses.fields(section_type)
    if field.type is int
]
TUPLE_KEYS = [
    f"{section}.{field.name}"
    for section, section_type in config_lib.SECTIONS.items()
    for field in dataclasses.fields(section_type)
    if typing.get_origin(field.type) is tuple
]


def _toml(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return repr(value)


def _accepted_or_refused(assignments):
    """The config after `assignments`, or None if refused with a UserError; any other exception fails."""
    try:
        config = config_lib.with_overrides(Config(), assignments)
    except UserError as error:
        assert "\n" not in " ".join(str(error).split())
        return None
    assert config_lib.loads(config_lib.to_toml(config)) == config
    return config


def _numbers(config):
    for section in config_lib.SECTIONS:
        for key, value in dataclasses.asdict(getattr(config, section)).items():
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, int | float) and not isinstance(item, bool):
                    yield f"{section}.{key}", item


def _assert_in_ranges(config):
    for dotted, value in _numbers(config):
        if isinstance(value, float):
            assert config_checks.in_interval(value, config_checks.FLOAT_RANGES.get(dotted, "(-inf, inf)")), dotted
        else:
            low, high = config_checks.INT_RANGES.get(dotted, (0, config_checks.INT32_MAX))
            assert low <= value <= high, dotted


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(FLOAT_KEYS), value=st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_float_keys_take_finite_numbers_in_range_or_refuse(key, value):
    config = _accepted_or_refused([f"{key}={_toml(value)}"])
    if config is not None:
        _assert_in_ranges(config)
        assert isinstance(getattr(getattr(config, key.split(".")[0]), key.split(".")[1]), float)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(INT_KEYS), value=st.integers(-(2**70), 2**70) | st.floats() | st.booleans())
def test_int_keys_take_integers_in_range_or_refuse(key, value):
    config = _accepted_or_refused([f"{key}={_toml(value) if not isinstance(value, bool) else str(value).lower()}"])
    if config is not None:
        _assert_in_ranges(config)
        assert type(getattr(getattr(config, key.split(".")[0]), key.split(".")[1])) is int


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(TUPLE_KEYS),
    items=st.lists(st.floats(allow_nan=True) | st.integers(-(2**40), 2**40) | st.text(max_size=8), max_size=3),
)
def test_list_keys_are_valid_or_refused(key, items):
    config = _accepted_or_refused([f"{key}=[{', '.join(_toml(item) for item in items)}]"])
    if config is not None:
        _assert_in_ranges(config)


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_any_text_for_a_string_key_is_kept_exactly_or_refused(text):
    """Quotes, backslashes, newlines, NUL and DEL survive config.toml; a bare value is read as TOML first."""
    quoted = config_lib._toml_value(text)
    config = _accepted_or_refused([f"data.data_dir={quoted}"])
    assert config is not None and config.data.data_dir == text


@settings(max_examples=300, deadline=None)
@given(assignment=st.text(max_size=40))
def test_any_assignment_is_applied_or_refused(assignment):
    config = _accepted_or_refused([assignment])
    if config is not None:
        _assert_in_ranges(config)


@pytest.mark.parametrize("text", ["a\udcff", "\ud800"])
def test_undecodable_command_line_bytes_are_refused(text):
    with pytest.raises(UserError, match="not UTF-8"):
        config_lib.with_overrides(Config(), [f"data.source={text}"])
