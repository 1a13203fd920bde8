"""Run a dynamics from initial states and record trajectories."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import Array
from ..data.trajectories import Trajectories
from ..data.validation import LARGEST_MAGNITUDE
from ..energies.base import AbstractForceField
from .base import AbstractDynamics
from .gradient_descent import GradientDescent
from .langevin import Langevin


class SimulationDivergedError(RuntimeError):
    """A simulation produced non-finite states.

    Attributes:
        trajectories: the recorded states up to (not including) the first non-finite save,
            or ``None`` if not even the initial state was finite.
        step: the first step index whose result was non-finite.
        trajectory: the index of the first trajectory that went non-finite.
        last_state: that trajectory's last finite state.
        summary: what happened and what to try, without the note on ``trajectories``.
    """

    def __init__(self, message, trajectories, step, trajectory, last_state, summary=None):
        super().__init__(message)
        self.summary = summary or message  # the message without the note on what is kept
        self.trajectories = trajectories
        self.step = step
        self.trajectory = trajectory
        self.last_state = last_state


@eqx.filter_jit
def _run_chunk(field, dynamics, x, keys, dt, save_every: int, step0):
    """``len(keys)`` saves of ``save_every`` steps each; tracks the first non-finite step."""
    n_traj = x.shape[0]

    def one_step(carry, key):
        state, bad_step, last_good, k = carry
        step_keys = jax.random.split(key, n_traj)
        new = jax.vmap(lambda s, kk: dynamics.step(field, s, kk, dt))(state, step_keys)
        finite = jnp.all(jnp.isfinite(new.reshape(n_traj, -1)), axis=1)
        newly_bad = (~finite) & (bad_step < 0)
        bad_step = jnp.where(newly_bad, k, bad_step)
        keep = (bad_step < 0).reshape((n_traj,) + (1,) * (state.ndim - 1))
        last_good = jnp.where(keep, new, last_good)
        return (new, bad_step, last_good, k + 1), None

    def one_save(carry, key):
        carry, _ = jax.lax.scan(one_step, carry, jax.random.split(key, save_every))
        return carry, carry[0]

    init = (x, jnp.full((n_traj,), -1), x, step0)
    carry, saved = jax.lax.scan(one_save, init, keys)
    return carry, saved


def simulate(
    field: AbstractForceField,
    dynamics: AbstractDynamics,
    x0,
    n_steps: int,
    key: Array,
    dt: float,
    *,
    save_every: int = 1,
    chunk_saves: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> Trajectories:
    """Simulate ``n_steps`` steps of ``dynamics`` under ``field`` from each initial state.

    Args:
        field: an energy (or a force field, for dynamics that only need forces).
        dynamics: the step rule (:class:`GradientDescent`, :class:`Langevin`, …).
        x0: initial states ``(N, *state_shape)``; a single state ``state_shape`` is promoted.
        n_steps: number of steps; must be a multiple of ``save_every``.
        key: a JAX PRNG key (used by stochastic dynamics).
        dt: step size / time step.
        save_every: record every ``save_every``-th state.
        chunk_saves: saves compiled into one chunk; the run is checked for finiteness (and
            ``progress`` is called) after each chunk, and stops at the first bad one.
        progress: optional callback ``progress(steps_done, n_steps)``.

    Returns:
        :class:`Trajectories` with ``n_steps // save_every + 1`` states each, times ``k·dt``.

    Raises:
        SimulationDivergedError: a state became NaN or inf.  The error names the step, the
            trajectory and its last finite state, and carries the trajectories saved up to the
            last save at which every state was finite and at most ``LARGEST_MAGNITUDE``.
    """
    dynamics.check_field(field)
    if n_steps < 1 or save_every < 1 or n_steps % save_every:
        raise ValueError(
            f"n_steps ({n_steps}) must be a positive multiple of save_every ({save_every})"
        )
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    x = jnp.asarray(x0, dtype=float)
    if x.ndim == field.state_ndim:
        x = x[None]
    if x.ndim != field.state_ndim + 1:
        raise ValueError(
            f"x0: expected shape (N, *state_shape) with a state of {field.state_ndim} axes, "
            f"got {tuple(x.shape)}"
        )
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError("x0: initial states must be finite")
    n_saves = n_steps // save_every
    x0_all = x
    saved = [np.asarray(x)]
    done = 0
    keys = jax.random.split(key, n_saves)
    while done < n_saves:
        count = min(chunk_saves, n_saves - done)
        step0 = jnp.asarray(done * save_every)
        (x_new, bad_step, last_good, _), chunk = _run_chunk(
            field, dynamics, x, keys[done : done + count], dt, save_every, step0
        )
        bad = np.asarray(bad_step)
        if (bad >= 0).any():
            i = int(np.argmin(np.where(bad >= 0, bad, np.iinfo(np.int64).max)))
            step = int(bad[i]) + 1
            chunk = np.asarray(chunk)
            saved.extend(chunk)
            # saves kept: finite, and within the magnitude data may hold (their squares finite);
            # earlier chunks may already have grown past it
            held = np.all(np.abs(np.stack(saved).reshape(len(saved), -1)) <= LARGEST_MAGNITUDE,
                          axis=1)  # fmt: skip
            saved = saved[: len(saved) if held.all() else int(np.argmin(held))]
            kept = _to_trajectories(saved, dt * save_every)
            last = np.asarray(last_good)[i]
            summary = (
                f"simulation diverged: trajectory {i} became non-finite at step {step} "
                f"(t = {step * dt:g}); its last finite state was {np.array2string(last, 6)}. "
                + _smaller_step(field, dynamics, np.asarray(x0_all[i]), dt)
            )
            raise SimulationDivergedError(
                summary + f"The {len(saved)} saves before it are kept in error.trajectories.",
                kept,
                step,
                i,
                last,
                summary=summary.strip(),
            )
        saved.extend(np.asarray(chunk))
        x = x_new
        done += count
        if progress is not None:
            progress(done * save_every, n_steps)
    return _to_trajectories(saved, dt * save_every)


EXPLICIT_EULER = (GradientDescent, Langevin)  # x ← x + dt·F(x) (+ noise)
MAX_JACOBIAN_SIZE = 400  # state sizes up to which the suggestion computes the curvature


def _smaller_step(field, dynamics, start: np.ndarray, dt: float) -> str:
    """What to try instead: for an explicit Euler step, the stable limit ``dt < 2/λ`` with
    ``λ`` the largest curvature (|eigenvalue| of the force's Jacobian) at the trajectory's
    start; otherwise a smaller dt in general terms."""
    general = f"Try a smaller dt than {dt:g}, or check that the energy is bounded below. "
    if not isinstance(dynamics, EXPLICIT_EULER) or start.size > MAX_JACOBIAN_SIZE:
        return general
    shape = start.shape

    def flat_force(v):
        return field.force_single(v.reshape(shape)).reshape(-1)

    jacobian = np.asarray(jax.jacfwd(flat_force)(jnp.asarray(start).reshape(-1)))
    if not np.all(np.isfinite(jacobian)):
        return general
    curvature = float(np.max(np.abs(np.linalg.eigvals(jacobian))))
    if not curvature > 0:
        return general
    limit = 2.0 / curvature
    return (
        f"The step is too stiff: at this trajectory's start the energy's largest curvature "
        f"is {curvature:.4g}, and an explicit step is stable only for dt < 2/{curvature:.4g} "
        f"= {limit:.4g} (dt is {dt:g}): try dt ≤ {limit / 2:.3g}"
        + (" (the curvature may grow further out). " if dt < limit else ". ")
    )


def _to_trajectories(saved: list[np.ndarray], dt_save: float) -> Trajectories | None:
    if len(saved) < 2:
        return None
    x = np.stack(saved, axis=1)  # (N, T, *s)
    return Trajectories(x, dt=dt_save)
