"""Reference systems: known energies (or fields) with the settings used by tests, the demo and
the benchmarks.  Each system knows its truth, so recovered energies can be scored.

``get_system(name, dim=None)`` returns a :class:`System`; ``SYSTEMS`` lists the names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data.populations import Endpoints, Snapshots
from .data.trajectories import Trajectories
from .dynamics import GradientDescent, Langevin, simulate
from .energies.base import AbstractEnergy, AbstractForceField
from .energies.particles import ParticleEnergy
from .energies.reference import JKONET_POTENTIALS, ReferenceEnergy, RotationField


@dataclass(frozen=True)
class System:
    """A reference system.

    Attributes:
        name: registry name.
        field: the true energy (an :class:`AbstractEnergy`) or, for non-gradient systems, the
            force field.
        dim: state dimension.
        box: ``(low, high)`` arrays of shape ``(d,)``: where initial states are drawn and plots
            are drawn by default.
        description: one line for humans.
    """

    name: str
    field: AbstractForceField
    dim: int
    box: tuple[np.ndarray, np.ndarray]
    description: str

    @property
    def is_gradient(self) -> bool:
        return isinstance(self.field, AbstractEnergy)

    @property
    def energy(self) -> AbstractEnergy:
        if not self.is_gradient:
            raise ValueError(f"system {self.name!r} is not a gradient system: it has no energy")
        return self.field  # type: ignore[return-value]

    def initial_states(
        self, n: int, rng: np.random.Generator, distribution: str = "uniform"
    ) -> np.ndarray:
        """``n`` start states in the system's box, shape ``(n, d)``.

        ``distribution`` (one of :data:`START_DISTRIBUTIONS`): ``"uniform"`` over the box;
        ``"point"``, all at the box's centre; ``"gaussian"``, normal about the centre with
        standard deviation a quarter of the box's width; ``"scattered"``, around 5 points
        drawn uniformly in the box (standard deviation width / 50).  Normal draws are clipped
        to the box, where stiff energies would blow an explicit step up."""
        low, high = self.box
        centre, width = (low + high) / 2, high - low
        if distribution == "uniform":
            return rng.uniform(low, high, size=(n, self.dim))
        if distribution == "point":
            return np.tile(centre, (n, 1))
        if distribution == "gaussian":
            return np.clip(centre + rng.normal(size=(n, self.dim)) * width / 4, low, high)
        if distribution == "scattered":
            points = rng.uniform(low, high, size=(5, self.dim))
            spread = rng.normal(size=(n, self.dim)) * width / 50
            return np.clip(points[rng.integers(5, size=n)] + spread, low, high)
        raise ValueError(f"unknown start distribution {distribution!r}; choose one of: "
                         f"{', '.join(START_DISTRIBUTIONS)}")  # fmt: skip


START_DISTRIBUTIONS = ("uniform", "point", "gaussian", "scattered")


def _box(dim: int, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    return np.full(dim, low, dtype=float), np.full(dim, high, dtype=float)


_DESCRIPTIONS = {
    "double_well": "Σ (x_j² − 1)²: two wells at ±1, barrier 1 (1-D by default)",
    "muller_brown": "0.1 × the Müller–Brown potential: three minima, 2-D",
    "three_well": "x⁶/6 − 5x⁴/4 + 2x²: wells at 0 and ±2 (1-D by default)",
    "rotated_double_well": "(u² − 1)² + 2w², (u, w) rotated by 30°: anisotropic double well, 2-D",
    "rotation": "non-gradient spiral F(x) = −x + 2(−x₁, x₀), 2-D (no energy exists)",
}

SYSTEMS = (*JKONET_POTENTIALS, *_DESCRIPTIONS)


def get_system(name: str, dim: int | None = None) -> System:
    """The reference system ``name`` in dimension ``dim`` (its natural dimension by default)."""
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; choose one of: {', '.join(SYSTEMS)}")
    if name in JKONET_POTENTIALS:
        d = 2 if dim is None else dim
        return System(
            name,
            ReferenceEnergy(name, d),
            d,
            _box(d, -4.0, 4.0),
            f"JKOnet* potential {name} (BENCHMARKS §A), uniform starts on [−4, 4]^d",
        )
    if name == "rotation":
        if dim not in (None, 2):
            raise ValueError(f"rotation is 2-D only, got dim={dim}")
        return System(name, RotationField(2.0), 2, _box(2, -2.0, 2.0), _DESCRIPTIONS[name])
    fixed = {"muller_brown": 2, "rotated_double_well": 2}.get(name)
    d = fixed if fixed else (1 if dim is None else dim)
    if fixed and dim not in (None, fixed):
        raise ValueError(f"{name} is {fixed}-D only, got dim={dim}")
    boxes = {
        "double_well": _box(d, -2.0, 2.0),
        "three_well": _box(d, -2.7, 2.7),
        "rotated_double_well": _box(d, -2.0, 2.0),
        "muller_brown": (np.array([-1.5, -0.5]), np.array([1.2, 2.0])),
    }
    return System(name, ReferenceEnergy(name, d), d, boxes[name], _DESCRIPTIONS[name])


def simulate_system(
    name: str,
    *,
    n: int = 200,
    steps: int = 500,
    dt: float = 0.01,
    temperature: float = 0.0,
    snapshots: bool = False,
    endpoints: bool = False,
    save_every: int = 1,
    dim: int | None = None,
    seed: int = 0,
    x0: np.ndarray | None = None,
    progress=None,
    interaction: bool = False,
    starts: str = "uniform",
):
    """Simulate a reference system from starts in its box (``starts``: ``"uniform"``,
    ``"point"``, ``"gaussian"`` or ``"scattered"``, see :meth:`System.initial_states`; or
    give the start states ``x0`` of shape ``(n, d)``).

    Gradient descent when ``temperature == 0``, Langevin (Euler–Maruyama) otherwise.  With
    ``snapshots=True`` identities are dropped: the result is :class:`~iel.data.Snapshots` with
    the rows of each time shuffled; with ``endpoints=True`` only the last state of each run is
    kept: :class:`~iel.data.Endpoints` with the starts attached.  With ``interaction=True``
    the system's energy is the pair energy ``W`` of one system of all ``n`` particles, each
    moved by ``−(1/n) Σ_j ∇W(x_i − x_j)`` (JKOnet*'s experiment 4.3): tracked, one trajectory
    per particle, or as snapshots; not as end states, which stand for independent runs.
    """
    import jax

    if snapshots and endpoints:
        raise ValueError("choose snapshots or endpoints, not both")
    if interaction and endpoints:
        raise ValueError("interaction simulates one system of all n particles; end states "
                         "stand for independent runs: write trajectories or snapshots")  # fmt: skip
    system = get_system(name, dim)
    rng = np.random.default_rng(seed)
    x0 = system.initial_states(n, rng, starts) if x0 is None else np.asarray(x0, dtype=float)
    dynamics = Langevin(float(temperature)) if temperature > 0 else GradientDescent()
    field = ParticleEnergy(None, system.energy) if interaction else system.field  # or raises
    traj = simulate(
        field,
        dynamics,
        x0[None] if interaction else x0,
        steps,
        jax.random.PRNGKey(seed),
        dt,
        save_every=steps if endpoints else save_every,  # end states need only the last
        progress=progress,
    )
    if interaction:  # one trajectory of the whole system → one trajectory per particle
        traj = Trajectories(np.swapaxes(np.asarray(traj.x[0]), 0, 1), t=np.asarray(traj.t[0]))
    if endpoints:
        return Endpoints(traj.x[:, -1], starts=traj.x[:, 0])
    if not snapshots:
        return traj
    xs, ts = [], []
    for k in range(traj.n_times):
        xs.append(traj.x[rng.permutation(traj.n_trajectories), k])
        ts.append(np.full(traj.n_trajectories, traj.t[0, k]))
    return Snapshots(np.concatenate(xs), np.concatenate(ts))
