"""Energies of systems of ``n`` interacting particles, states of shape ``(n, d)``.

``E(X) = Σ_i V(x_i) + (1/(2n)) Σ_{i≠j} W(x_i − x_j)``     (``pair_normalisation="mean"``)

so that the force on particle ``i`` is ``−∇V(x_i) − mean_j ∇W(x_i − x_j)`` for an even ``W``
(the mean-field convention of JKOnet* and of McKean–Vlasov dynamics).  With
``pair_normalisation="sum"`` the pair sum is ``½ Σ_{i≠j} W(x_i − x_j)`` (classical pair
potentials).  Either part may be ``None``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array
from .base import AbstractEnergy, field_from_config, register


@register
class ParticleEnergy(AbstractEnergy):
    one_body: AbstractEnergy | None
    pair: AbstractEnergy | None
    pair_normalisation: str = eqx.field(static=True, default="mean")

    state_ndim: ClassVar[int] = 2

    def __check_init__(self):
        if self.one_body is None and self.pair is None:
            raise ValueError("ParticleEnergy needs a one-body energy, a pair energy, or both")
        if self.pair_normalisation not in ("mean", "sum"):
            raise ValueError(
                f"pair_normalisation must be 'mean' or 'sum', got {self.pair_normalisation!r}"
            )

    def __call__(self, x: Array) -> Array:
        if x.ndim != 2:
            raise ValueError(f"particle state must have shape (n, d), got {tuple(x.shape)}")
        n = x.shape[0]
        total = jnp.zeros((), dtype=x.dtype)
        if self.one_body is not None:
            total = total + jnp.sum(jax.vmap(self.one_body)(x))
        if self.pair is not None:
            off_diagonal = ~jnp.eye(n, dtype=bool)
            # The diagonal's differences are replaced before W sees them, not only masked
            # after: a W with a kink or pole at 0 (``‖v‖``, ``1/‖v‖``) would otherwise put
            # 0 · NaN = NaN into every gradient.
            diff = jnp.where(off_diagonal[..., None], x[:, None, :] - x[None, :, :], 1.0)
            w = jax.vmap(jax.vmap(self.pair))(diff)
            scale = 0.5 / n if self.pair_normalisation == "mean" else 0.5
            total = total + scale * jnp.sum(jnp.where(off_diagonal, w, 0.0))
        return total

    def formula(self, precision: int = 3) -> str:
        parts = []
        if self.one_body is not None:
            parts.append("Σ_i V(x_i), " + self.one_body.formula(precision).replace("E(x)", "V(x)"))
        if self.pair is not None:
            norm = "1/(2n)" if self.pair_normalisation == "mean" else "½"
            parts.append(
                f"{norm}·Σ_(i≠j) W(x_i − x_j), "
                + self.pair.formula(precision).replace("E(x)", "W(x)")
                + " with x = x_i − x_j"
            )
        return "E(X) = " + " + ".join(parts)

    def config(self) -> dict[str, Any]:
        return {
            "type": "ParticleEnergy",
            "one_body": None if self.one_body is None else self.one_body.config(),
            "pair": None if self.pair is None else self.pair.config(),
            "pair_normalisation": self.pair_normalisation,
        }

    @classmethod
    def from_config(cls, config):
        one = config["one_body"]
        pair = config["pair"]
        return cls(
            None if one is None else field_from_config(one),
            None if pair is None else field_from_config(pair),
            config["pair_normalisation"],
        )
