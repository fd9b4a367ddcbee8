"""model.arch -> the model a run trains: a built-in net by name, or the user's own Flax model.

`model.arch = "package.module:NAME"` imports NAME (from the user's environment or PYTHONPATH); from Python
(lira_jax.train_shadows) NAME may be the callable itself. NAME is called with keyword arguments only:
`NAME(num_classes=C, input_shape=S)` -> flax.linen.Module, or, when it takes `rngs` (an nnx.Module class
or a function with that parameter), `NAME(num_classes=C, input_shape=S, rngs=nnx.Rngs(...))` ->
flax.nnx.Module. S is one example's shape, e.g. (8, 8, 1). Other settings of the model: bind them in the
user's module (a module-level function, or functools.partial).

Before anything trains, the model is built abstractly (jax.eval_shape) and checked: its output must be
logits [B, C] in train and eval mode, its state arrays that stack along the model axis ("params" and
"batch_stats" only), and DP-SGD refuses cross-example state (BatchNorm statistics). Each problem is one
UserError naming it. The run records the source of NAME (`source_record`: its file's sha256), so that a
resume with a changed model is refused (lira_jax/run_recipe.py).
"""

import functools
import hashlib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from lira_jax.config import Config, ModelConfig, is_import_path
from lira_jax.errors import UserError
from lira_jax.shadow.models import ARCHITECTURES, build_model
from lira_jax.shadow.optimizers import fingerprint, make_optimizer
from lira_jax.shadow.user_models import LinenModel, NnxModel, named_arrays


@dataclass(frozen=True)
class GivenRecipe:
    """What a run was given from Python (lira_jax.train_shadows) rather than named in its config: the
    model callable (model.arch records its name) and the optax transformation (train.optimizer = "custom")."""

    model: Callable | None = None
    optimizer: Any = None


GIVEN_NONE = GivenRecipe()


def builtin_net(config: ModelConfig, num_classes: int, input_shape: tuple[int, ...], dtype: Any) -> nn.Module:
    """One of models.ARCHITECTURES (config.arch; a transformer's config through models.fit_to_data), its
    convolutions native (`with_conv` switches them)."""
    return build_model(config, num_classes, input_shape, dtype, "native")


# Built-in model.arch names -> constructors (config, num_classes, input_shape, dtype) -> linen module.
BUILTIN_MODELS: dict[str, Callable[..., nn.Module]] = dict.fromkeys(ARCHITECTURES, builtin_net)


def conv_of(model: Any) -> str:
    """How `model` computes its convolutions: "matmul" (im2col) or "native"; a model without the choice
    (a user's, or a net without convolutions) is "native": it runs its own operations as they are."""
    return "matmul" if getattr(model, "matmul_conv", False) else "native"


def with_conv(model: Any, conv: str) -> Any:
    """`model` with its convolutions computed the `conv` way, where it has that choice (built-in conv nets)."""
    return model.clone(matmul_conv=conv == "matmul") if has_conv_choice(model) else model


def has_conv_choice(model: Any) -> bool:
    return isinstance(model, nn.Module) and hasattr(model, "matmul_conv")


def resolve(arch: str) -> Callable:
    """The callable "package.module:NAME" names (NAME may be dotted, e.g. Outer.make); UserError if it does
    not import or is not callable."""
    module_name, _, name = arch.partition(":")
    try:
        target: Any = importlib.import_module(module_name.strip())
    except Exception as error:  # the user's module may raise anything while it imports
        hint = " (a script run as __main__: call lira_jax.train_shadows from it)" if module_name == "__main__" else ""
        raise UserError(
            f"model.arch = {arch!r}: module {module_name!r} does not import ({type(error).__name__}: {error});"
            f" is it on PYTHONPATH?{hint}"
        ) from None
    for part in name.strip().split("."):
        if not hasattr(target, part):
            raise UserError(f"model.arch = {arch!r}: {module_name} has no attribute {name!r}")
        target = getattr(target, part)
    if not callable(target):
        raise UserError(f"model.arch = {arch!r}: {name} is a {type(target).__name__}, not callable")
    return target


def describe(value: Any) -> str:
    """A stable text naming a callable and what is bound to it (no memory addresses), for the run's record."""
    if isinstance(value, functools.partial):
        arguments = [describe(argument) for argument in value.args]
        arguments += [f"{key}={describe(argument)}" for key, argument in sorted(value.keywords.items())]
        return f"functools.partial({', '.join([describe(value.func), *arguments])})"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}:{value.__qualname__}"
    return repr(value)


def arch_of(model: Callable) -> str:
    """The model.arch recorded for a callable given from Python: "module:qualified.name" of what it wraps."""
    inner = model.func if isinstance(model, functools.partial) else model
    return f"{getattr(inner, '__module__', '?')}:{getattr(inner, '__qualname__', type(inner).__name__)}"


def source_record(model: Callable) -> dict[str, str]:
    """{"name": describe(model), "file", "sha256"}: the source file that defines the callable (or what a
    partial wraps), by inspect.getsourcefile; without a file (a notebook cell), the sha256 of its source."""
    inner = model
    while isinstance(inner, functools.partial):
        inner = inner.func
    try:
        path = inspect.getsourcefile(inner)
    except TypeError:
        path = None
    if path and Path(path).is_file():
        return {"name": describe(model), "file": str(Path(path).resolve()), "sha256": _sha256(Path(path).read_bytes())}
    try:
        source = inspect.getsource(inner)
    except (OSError, TypeError):
        raise UserError(f"the source of model {describe(model)} cannot be found: define it in a file") from None
    return {"name": describe(model), "file": "(inspect.getsource)", "sha256": _sha256(source.encode())}


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def takes_rngs(model: Callable) -> bool:
    """Whether NAME is the nnx kind: an nnx.Module class, or a callable with an `rngs` parameter."""
    if isinstance(model, type) and issubclass(model, nnx.Module):
        return True
    try:
        return "rngs" in inspect.signature(model).parameters
    except (TypeError, ValueError):
        return False


def user_model(model: Callable, name: str, num_classes: int, input_shape: tuple[int, ...], dtype: Any) -> Any:
    """The adapter (user_models) of the user's callable `model` (`name`: how messages call it)."""
    arguments = {"num_classes": num_classes, "input_shape": tuple(input_shape)}
    if not takes_rngs(model):
        built = _called(name, lambda: model(**arguments))
        if not isinstance(built, nn.Module):
            raise UserError(
                f"{name}(num_classes, input_shape) returned a {type(built).__name__}, not a flax.linen.Module"
            )
        return LinenModel(built, dtype)

    def build(rngs: nnx.Rngs) -> nnx.Module:
        return model(**arguments, rngs=rngs)

    abstract = _called(
        name, lambda: nnx.eval_shape(lambda: build(nnx.Rngs(0))), "built abstractly (its state must be JAX arrays)"
    )
    if not isinstance(abstract, nnx.Module):
        raise UserError(f"{name}(..., rngs) returned a {type(abstract).__name__}, not a flax.nnx.Module")
    graphdef, params, batch_stats, streams, other = nnx.split(abstract, nnx.Param, nnx.BatchStat, nnx.RngState, ...)
    for path, variable in nnx.to_flat_state(other):
        raise UserError(
            f"{name}: its state {'/'.join(map(str, path))} is a {type(variable).__name__}; the engine stacks"
            " nnx.Param and nnx.BatchStat arrays along the model axis (and reseeds RNG streams), nothing else"
        )
    for path, value in [*named_arrays(params).items(), *named_arrays(batch_stats).items()]:
        if not isinstance(value, jax.ShapeDtypeStruct):
            raise UserError(
                f"{name}: its state {path} holds a {type(value).__name__}, not a JAX array: it cannot be stacked"
                " along the model axis"
            )
    templates = [list(nnx.to_flat_state(state)) for state in (params, batch_stats, streams)]
    return NnxModel(build, graphdef, *templates, dtype)


def _called(name: str, call: Callable[[], Any], how: str = "called") -> Any:
    """call(), its failure one UserError naming the model (the user's code may raise anything)."""
    try:
        return call()
    except UserError:
        raise
    except Exception as error:
        raise UserError(f"{name} cannot be {how}: {type(error).__name__}: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]


def check_model(model: Any, name: str, config: Config, num_classes: int, input_shape: tuple[int, ...]) -> None:
    """Traces `model` (nothing is computed) on a batch of 2: logits [2, num_classes] in both modes, variables
    "params" (and "batch_stats") only, and none of the latter with DP-SGD. Each problem one UserError."""
    images = jax.ShapeDtypeStruct((2, *input_shape), jnp.float32)
    key = jax.random.key(0)
    variables = _called(name, lambda: jax.eval_shape(lambda: model.init(key, jnp.zeros(images.shape))), "initialised")
    extra = sorted(set(variables) - {"params", "batch_stats"})
    if extra:
        raise UserError(f"{name} has variable collections {extra}: the engine trains 'params' and 'batch_stats' only")
    if config.train.dp_sgd and jax.tree.leaves(variables.get("batch_stats", {})):
        raise UserError(
            f"train.dp_sgd cannot train {name}: its batch statistics (BatchNorm) mix the examples of a batch, so"
            " per-example gradients (and the privacy guarantee) do not exist; use GroupNorm or LayerNorm"
        )
    for train in (False, True):

        def forward(variables, images, train=train):
            return model.apply(variables, images, train=train, mutable=["batch_stats"], rngs={"dropout": key})[0]

        logits = _called(name, lambda forward=forward: jax.eval_shape(forward, variables, images))
        mode = "train" if train else "eval"
        if not isinstance(logits, jax.ShapeDtypeStruct) or logits.shape != (2, num_classes):
            shape = getattr(logits, "shape", type(logits).__name__)
            raise UserError(
                f"{name} returns {shape} on a batch of shape {images.shape} in {mode} mode; it must return"
                f" logits [batch, num_classes] = [2, {num_classes}]"
            )
        if not jnp.issubdtype(logits.dtype, jnp.floating):
            raise UserError(f"{name} returns {logits.dtype} logits in {mode} mode; they must be floating point")


def user_callable(config: Config, given: Callable | None = None) -> Callable | None:
    """The user's model callable of the run: `given` from Python, or the one model.arch imports; None for
    a built-in net."""
    if given is not None:
        return given
    return resolve(config.model.arch) if is_import_path(config.model.arch) else None


def model_source(config: Config, given: Callable | None = None) -> dict[str, str] | None:
    """What the run records of a user's model (source_record, with its model.arch and API, "linen" or
    "nnx"); None for a built-in net. Cheap: nothing is built."""
    callable_model = user_callable(config, given)
    if callable_model is None:
        return None
    api = "nnx" if takes_rngs(callable_model) else "linen"
    return {"arch": config.model.arch, "api": api, **source_record(callable_model)}


def build(config: Config, num_classes: int, input_shape: tuple[int, ...], given: Callable | None = None) -> Any:
    """The model of config.model.arch (or `given` from Python) for examples of `input_shape` and
    `num_classes` classes at train.precision. A user's model is checked (check_model) before it is returned."""
    dtype = jnp.dtype(config.train.precision)
    callable_model = user_callable(config, given)
    if callable_model is None:
        return BUILTIN_MODELS[config.model.arch](config.model, num_classes, input_shape, dtype)
    if config.model.conv == "matmul":
        raise UserError(f"model.conv = 'matmul' applies to the built-in conv nets, not to {config.model.arch}")
    name = f"model {config.model.arch}"
    model = user_model(callable_model, name, num_classes, input_shape, dtype)
    check_model(model, name, config, num_classes, input_shape)
    return model


def recipe_record(config: Config, given: GivenRecipe = GIVEN_NONE) -> dict[str, Any]:
    """What RUN/recipe.json records of this run (lira_jax/run_recipe.py): the user's model source, and a
    custom optimizer's fingerprint; {} for a built-in net with a named optimizer."""
    recipe: dict[str, Any] = {}
    source = model_source(config, given.model)
    if source is not None:
        recipe["model"] = source
    if given.optimizer is not None:
        make_optimizer(config.train, given.optimizer)  # refuses what is not an optax transformation
        recipe["optimizer"] = {"custom": "optax.GradientTransformation", "fingerprint": fingerprint(given.optimizer)}
    return recipe
