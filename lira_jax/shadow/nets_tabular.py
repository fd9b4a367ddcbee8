"""Built-in nets for data that are not images: an MLP for tables and a small Transformer encoder for tokens.

Both are plain `flax.linen` modules with the image nets' call signature (shadow/models.py):
`model.apply(variables, x, train: bool) -> logits: float32[B, num_classes]`, where x is float[B, D] for
the MLP (images [B, H, W, C] are flattened) and int32[B, T] token ids for the Transformer. Neither shares
statistics across examples (no BatchNorm), so per-example gradients, and DP-SGD, exist for both.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

Dtype = Any

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu, "sigmoid": nn.sigmoid}


def _head(features: Any, num_classes: int) -> Any:
    """The classifier in float32 whatever the compute dtype, as the image nets' (logits keep their precision)."""
    return nn.Dense(num_classes, dtype=jnp.float32)(features.astype(jnp.float32))


class MLP(nn.Module):
    """Dense layers of `hidden` widths with `activation`, dropout, a dense head.

    The default, 1024-512-256-128 with tanh, is the Purchase-100 / Texas-100 net of Shokri et al. 2017 and
    Nasr et al. 2018. hidden = () is multinomial logistic regression.
    """

    num_classes: int
    hidden: tuple[int, ...] = (1024, 512, 256, 128)
    activation: str = "tanh"
    dropout: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        activation = ACTIVATIONS[self.activation]
        x = x.reshape(x.shape[0], -1).astype(self.dtype)
        for width in self.hidden:
            x = activation(nn.Dense(width, dtype=self.dtype)(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return _head(x, self.num_classes)


class EncoderBlock(nn.Module):
    """Pre-LayerNorm Transformer block: x + attention(LN(x)), then x + MLP(LN(x)) with a 4x GELU MLP."""

    heads: int
    dropout: float
    dtype: Dtype

    @nn.compact
    def __call__(self, x, train: bool):
        width = x.shape[-1]
        attended = nn.MultiHeadDotProductAttention(
            self.heads, dtype=self.dtype, dropout_rate=self.dropout, deterministic=not train
        )(nn.LayerNorm(dtype=self.dtype)(x))
        x = x + attended
        y = nn.gelu(nn.Dense(4 * width, dtype=self.dtype)(nn.LayerNorm(dtype=self.dtype)(x)))
        y = nn.Dropout(self.dropout, deterministic=not train)(nn.Dense(width, dtype=self.dtype)(y))
        return x + y


class Transformer(nn.Module):
    """A small encoder classifier of token ids int[B, T]: token embedding plus learned positions, `layers`
    pre-LN blocks of `heads` heads, a final LayerNorm, mean pooling over positions (or a learned CLS token
    in front, pooling = "cls"), dropout, a dense head.

    Every position is attended and pooled: sequences are taken at their fixed length T, so a padding id
    is a token like any other (no mask).
    """

    num_classes: int
    vocab_size: int
    max_length: int
    width: int = 64
    layers: int = 2
    heads: int = 4
    pooling: str = "mean"  # mean | cls
    dropout: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, tokens, train: bool):
        x = nn.Embed(self.vocab_size, self.width, dtype=self.dtype)(tokens)
        length = tokens.shape[1]
        if self.pooling == "cls":
            cls = self.param("cls", nn.initializers.normal(0.02), (1, 1, self.width))
            x = jnp.concatenate([jnp.broadcast_to(cls.astype(self.dtype), (x.shape[0], 1, self.width)), x], axis=1)
            length += 1
        slots = self.max_length + (self.pooling == "cls")
        positions = self.param("positions", nn.initializers.normal(0.02), (slots, self.width))
        x = x + positions[:length].astype(self.dtype)
        for _ in range(self.layers):
            x = EncoderBlock(self.heads, self.dropout, self.dtype)(x, train)
        x = nn.LayerNorm(dtype=jnp.float32)(x.astype(jnp.float32))
        pooled = x[:, 0] if self.pooling == "cls" else jnp.mean(x, axis=1)
        pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
        return _head(pooled, self.num_classes)
