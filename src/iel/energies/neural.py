"""Neural energies: a smooth multilayer perceptron and an input-convex network (ICNN).

Activations are named by string (``"softplus"``, ``"tanh"``, ``"silu"``, ``"gelu"``) so a saved
model records only a name and loading runs no code.  Smooth activations keep ``∇E`` smooth,
which the dynamics and the estimators differentiate again.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import Array
from .base import AbstractEnergy, register


@jax.custom_jvp
def softplus(x: Array) -> Array:
    """``log(1 + eˣ)`` with its derivative stated as the logistic ``σ(x) = 1/(1 + e⁻ˣ)``.

    The values are ``jax.nn.softplus``'s; only the derivative rule differs.  JAX's own
    softplus is ``logaddexp(x, 0)``, whose derivative rule is built from exponentials of
    ``x − max(x, 0)``: an energy's force ``−∇E`` and the one-step loss's gradient (a second
    derivative) then carry those expressions, where ``σ`` is one primitive with the derivative
    ``σ(1 − σ)``.  The one-step loss and its gradient of a 64-unit network on 5000 pairs cost
    less than half as much this way (``benchmarks/network_loss.py``)."""
    return jax.nn.softplus(x)


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return softplus(x), jax.nn.sigmoid(x) * dx


ACTIVATIONS = {
    "softplus": softplus,
    "tanh": jnp.tanh,
    "silu": jax.nn.silu,
    "gelu": jax.nn.gelu,
}


def _activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def mlp_layers(sizes: Sequence[int | str], key: Array) -> tuple[eqx.nn.Linear, ...]:
    """Linear layers ``sizes[0] → sizes[1] → …`` (the last size may be ``"scalar"``)."""
    inner = sizes[:-1]
    if len(inner) < 2 or min(int(v) for v in inner) < 1:
        raise ValueError(
            f"MLP needs dim ≥ 1 and positive hidden widths, got sizes {list(inner)} → {sizes[-1]}"
        )
    return _initial_layers(tuple(sizes), key)


def _initial_layers(sizes: tuple, key: Array) -> tuple[eqx.nn.Linear, ...]:
    """Equinox's default initialisation law — weights and biases uniform on
    ``±1/√fan_in`` — drawn by NumPy from a generator seeded with ``key``'s data: the layers'
    shapes come from :func:`equinox.filter_eval_shape`, so nothing is compiled.  (Drawn by
    ``jax.random`` each shape compiled its own sampler: six programs, about 0.7 s on two
    cores for a one-hidden-layer network, or one jitted program of 0.45 s — a first fit's
    cost, paid before any data were seen.)"""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        shape = eqx.filter_eval_shape(eqx.nn.Linear, fan_in, fan_out, key=key)
        limit = 1.0 / np.sqrt(1 if fan_in == "scalar" else fan_in)
        drawn = [jnp.asarray(rng.uniform(-limit, limit, leaf.shape), leaf.dtype)
                 for leaf in (shape.weight, shape.bias)]  # fmt: skip
        layers.append(eqx.tree_at(lambda layer: (layer.weight, layer.bias), shape, tuple(drawn)))
    return tuple(layers)


def mlp_apply(layers: Sequence[eqx.nn.Linear], activation: str, x: Array) -> Array:
    """``layers[-1](σ(… σ(layers[0](x))))``."""
    act = _activation(activation)
    for layer in layers[:-1]:
        x = act(layer(x))
    return layers[-1](x)


def radial_input(x: Array) -> Array:
    """``ρ(x) = √(1 + ‖x‖²/d)``: the root-mean-square coordinate, smoothed at the origin so an
    energy of it has no cone there (``≈ ‖x‖/√d`` once ``‖x‖² ≫ d``)."""
    return jnp.sqrt(1.0 + jnp.sum(x**2, axis=-1) / x.shape[-1])


@register
class MLPEnergy(AbstractEnergy):
    """``E(x) = w_Lᵀ σ(… σ(W_1 x + b_1) …) + b_L`` with smooth ``σ``.

    ``radial=True`` feeds the network ``(x, ρ(x))`` with :func:`radial_input` ``ρ``, whose
    weights start at zero (the plain network's start, from which training can only add the
    radius where it helps): a radial factor such as holder_table's ``exp(|1 − ‖x‖/π|)`` is one
    input then, where from the coordinates alone a network has to build ``‖x‖`` out of ``d``
    squares — in 50 dimensions 32×32 softplus units did not (JKOnet* suite, ``python
    benchmarks/jkonet_suite.py --dim 50``, README)."""

    layers: tuple[eqx.nn.Linear, ...]
    dim: int = eqx.field(static=True)
    widths: tuple[int, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    radial: bool = eqx.field(static=True)

    def __init__(self, dim: int, widths: Sequence[int], key: Array, activation: str = "softplus",
                 radial: bool = False):  # fmt: skip
        _activation(activation)
        layers = mlp_layers([dim, *widths, "scalar"], key)
        if radial:  # ρ's weights start at zero: the same start as the plain network's
            first = layers[0]
            widened = eqx.filter_eval_shape(eqx.nn.Linear, dim + 1, first.out_features, key=key)
            weight = jnp.concatenate([first.weight, jnp.zeros((first.out_features, 1))], axis=1)
            layers = (eqx.tree_at(lambda layer: (layer.weight, layer.bias), widened,
                                  (weight, first.bias)), *layers[1:])  # fmt: skip
        self.layers = layers
        self.dim = int(dim)
        self.widths = tuple(int(w) for w in widths)
        self.activation = activation
        self.radial = bool(radial)

    def __call__(self, x: Array) -> Array:
        if self.radial:
            x = jnp.concatenate([x, radial_input(x)[..., None]], axis=-1)
        return mlp_apply(self.layers, self.activation, x)

    def formula(self, precision: int = 3) -> str:
        arch = "x".join(str(w) for w in self.widths)
        if self.radial:
            return (f"E(x) = MLP[{self.dim}+1→{arch}→1, {self.activation}](x, ρ), "
                    "ρ = √(1 + ‖x‖²/d)")  # fmt: skip
        return f"E(x) = MLP[{self.dim}→{arch}→1, {self.activation}](x)"

    def config(self):
        return {
            "type": "MLPEnergy",
            "dim": self.dim,
            "widths": list(self.widths),
            "activation": self.activation,
            "radial": self.radial,
        }

    @classmethod
    def from_config(cls, config):
        return cls(config["dim"], config["widths"], jax.random.PRNGKey(0), config["activation"],
                   config.get("radial", False))  # fmt: skip


@register
class ICNNEnergy(AbstractEnergy):
    """Input-convex network (Amos, Xu & Kolter 2017): ``E`` is convex in ``x``.

    ``z_1 = σ(W_0 x + b_0)``, ``z_{k+1} = σ(softplus(U_k) z_k + W_k x + b_k)``,
    ``E(x) = softplus(u)ᵀ z_K + wᵀx + ½ μ ‖x‖²``: non-negative weights on ``z`` and a convex,
    non-decreasing ``σ`` (softplus) make each layer convex; ``μ > 0`` makes ``E`` strongly
    convex, hence it has one minimum.
    """

    input_layers: tuple[eqx.nn.Linear, ...]
    hidden_raw: tuple[Array, ...]
    output_raw: Array
    linear: Array
    dim: int = eqx.field(static=True)
    widths: tuple[int, ...] = eqx.field(static=True)
    strong_convexity: float = eqx.field(static=True)

    def __init__(self, dim: int, widths: Sequence[int], key: Array, strong_convexity=1e-3):
        if dim < 1 or not widths or min(widths) < 1:
            raise ValueError(f"ICNN needs dim ≥ 1 and positive widths, got {dim=}, {widths=}")
        keys = jax.random.split(key, 2 * len(widths) + 2)
        self.input_layers = tuple(
            eqx.nn.Linear(dim, w, key=k) for w, k in zip(widths, keys[: len(widths)])
        )
        self.hidden_raw = tuple(
            0.1 * jax.random.normal(k, (b, a)) - 2.0
            for a, b, k in zip(widths[:-1], widths[1:], keys[len(widths) :])
        )
        self.output_raw = 0.1 * jax.random.normal(keys[-2], (widths[-1],)) - 2.0
        self.linear = jnp.zeros(dim)
        self.dim = int(dim)
        self.widths = tuple(int(w) for w in widths)
        self.strong_convexity = float(strong_convexity)

    def __call__(self, x: Array) -> Array:
        z = softplus(self.input_layers[0](x))
        for layer, raw in zip(self.input_layers[1:], self.hidden_raw):
            z = softplus(jax.nn.softplus(raw) @ z + layer(x))
        out = jax.nn.softplus(self.output_raw) @ z + self.linear @ x
        return out + 0.5 * self.strong_convexity * jnp.sum(x**2)

    def formula(self, precision: int = 3) -> str:
        arch = "x".join(str(w) for w in self.widths)
        return f"E(x) = ICNN[{self.dim}→{arch}→1](x) (convex)"

    def config(self):
        return {
            "type": "ICNNEnergy",
            "dim": self.dim,
            "widths": list(self.widths),
            "strong_convexity": self.strong_convexity,
        }

    @classmethod
    def from_config(cls, config):
        return cls(
            config["dim"], config["widths"], jax.random.PRNGKey(0), config["strong_convexity"]
        )
