"""The multi-step rollout estimator: for noisy observations, long gaps between observations,
hidden starting states and partial observations (THEORY §3–§4).

Each trajectory is cut into segments of ``horizon`` observation intervals (multiple shooting).
From the segment's start ``z`` (the observed state, or a learned variable) the model rolls
gradient descent forward with ``substeps`` Euler steps per observation interval,
``x ← x − h ∇E_θ(x)``, ``h = Δt / substeps``, and is compared with every later observation
through the observation map ``y = P x``:

    ``L(θ, z) = Σ_segments Σ_k m_k ‖y_k − P x_k(θ, z)‖²  (+ Σ m_0 ‖y_0 − P z‖² for learned z)``

The gradient is taken through the whole rollout by reverse-mode autodiff (BPTT; see
:mod:`iel.estimators.gradients` for the recursion it computes, checked in the tests); with
``checkpoint=True`` only the states at observation times are stored and the substeps are
recomputed in the backward pass, so memory grows with the number of observations, not steps.

Noise, after the fit: residual variances ``v(k)`` at lag ``k`` grow as
``v(k) ≈ c·σ² + 2 T k Δt`` (``σ`` observation noise, ``T`` temperature; ``c = 2`` for observed
starts, 1 for learned ones), so a line through ``v(1..4)`` estimates both.  This ignores the
curvature of ``E`` over the lag: it is a first-order estimate, reported as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...data.trajectories import Trajectories
from ...dynamics import GradientDescent
from ...energies.base import AbstractEnergy
from ...training import (
    lbfgs_state,
    run_training,
    warmup_cosine_adam,
)
from ..base import (
    AbstractEstimator,
    fitted_model,
    shift_to_zero_min,
)
from .closed_form import warm_started_energy


def rollout_observed(
    energy: AbstractEnergy, z, n_obs: int, substeps: int, h, checkpoint: bool = False
):
    """States at the next ``n_obs`` observation times from ``z``: shape ``(n_obs, D)``, each
    ``substeps`` steps of :class:`~iel.dynamics.GradientDescent` (step ``h``) after the last."""

    descent = GradientDescent()

    def substep(x, _):
        return descent.step(energy, x, None, h), None

    def interval(x, _):
        x, _ = jax.lax.scan(substep, x, None, length=substeps)
        return x, x

    if checkpoint:
        interval = jax.checkpoint(interval)
    _, xs = jax.lax.scan(interval, z, None, length=n_obs)
    return xs


def _segments(data: Trajectories, horizon: int):
    """Cut trajectories into windows of ``horizon + 1`` observations (shared endpoints)."""
    n, t_len = data.x.shape[:2]
    starts = list(range(0, max(t_len - 1, 1), horizon))
    ys, masks, owners, offsets = [], [], [], []
    obs = data.observed
    for s in starts:
        end = min(s + horizon + 1, t_len)
        y = np.full((n, horizon + 1, data.dim), 0.0)
        m = np.zeros((n, horizon + 1), dtype=bool)
        y[:, : end - s] = np.nan_to_num(data.x[:, s:end])
        m[:, : end - s] = obs[:, s:end]
        ys.append(y)
        masks.append(m)
        owners.append(np.arange(n))
        offsets.append(np.full(n, s))
    y = np.concatenate(ys)
    m = np.concatenate(masks)
    owner = np.concatenate(owners)
    offset = np.concatenate(offsets)
    keep = m[:, 1:].any(axis=1) & m[:, 0]
    return y[keep], m[keep], owner[keep], offset[keep]


@dataclass(eq=False)
class Rollout(AbstractEstimator):
    """Fit an energy by rolling the dynamics through the gaps between observations.

    Args:
        energy: spec string or initial energy (a linear part is warm-started by the closed form).
        horizon: observation intervals per segment (multiple shooting).
        substeps: Euler steps per observation interval (default: enough that each step is at
            most ``max_step``, see below, or 10).
        max_step: the largest model step when ``substeps`` is not given.
        projection: ``(m, D)`` observation matrix ``P`` (``y = P x``); ``None`` = identity.
            With a projection the starts are always learned (the hidden coordinates are not
            observed); the first ``m`` state coordinates are initialised from ``P⁺ y``.
        hidden_starts: learn each segment's start instead of using the observed state (for
            noisy or missing first observations).
        temperature: fix ``T`` instead of estimating it.
        steps: optimiser steps (Adam).
        batch_size: segments per minibatch.
        learning_rate: Adam's peak learning rate (warm-up, then cosine decay).
        patience: evaluations without improvement on the held-out segments before stopping.
        holdout: share of trajectories held out for early stopping (from 10 trajectories on).
        seed: random seed (initialisation, minibatches, the held-out split).
        progress: callback ``progress(step, steps, loss)``.
        checkpoint: recompute substeps in the backward pass (memory ∝ observations).
    """

    method = "rollout"

    energy: str | AbstractEnergy = "poly:4"
    _: KW_ONLY
    horizon: int = 5
    substeps: int | None = None
    max_step: float | None = None
    projection: np.ndarray | None = None
    hidden_starts: bool = False
    temperature: float | None = None
    steps: int = 2000
    batch_size: int = 256
    learning_rate: float = 0.01
    patience: int = 15
    holdout: float = 0.1
    checkpoint: bool = False
    optimiser: str = "adam"
    seed: int = 0
    progress: Callable[[int, int, float], None] | None = None

    def _check(self, data: Trajectories) -> tuple[float, np.ndarray]:
        if not isinstance(data, Trajectories):
            raise TypeError(f"Rollout fits trajectories, got {type(data).__name__}")
        # one step for every trajectory; where each starts does not matter (E does not
        # depend on time), so tracks that begin at different frames are fine
        steps = np.diff(data.t, axis=1)
        if not np.allclose(steps, steps.flat[0], rtol=1e-9):
            raise ValueError(
                "the rollout estimator needs evenly spaced observation times, the same step "
                f"in every trajectory (got steps from {np.nanmin(steps):g} to "
                f"{np.nanmax(steps):g}); mark missing ones with a mask"
            )
        if self.horizon < 1:
            raise ValueError(f"horizon must be ≥ 1, got {self.horizon}")
        if self.projection is None:
            return float(steps.flat[0]), np.eye(data.dim)
        p = np.asarray(self.projection, dtype=float)
        if p.ndim != 2 or p.shape[0] != data.dim:
            raise ValueError(
                f"projection: expected shape (observed dims = {data.dim}, state dims), "
                f"got {p.shape}"
            )
        return float(steps.flat[0]), p

    def fit(self, data: Trajectories) -> Rollout:
        start_time = time.perf_counter()
        dt_obs, proj = self._check(data)
        obs_dim, state_dim = proj.shape
        learn_starts = self.hidden_starts or self.projection is not None
        substeps = self.substeps or (
            max(1, int(np.ceil(dt_obs / self.max_step))) if self.max_step else 10
        )
        h = dt_obs / substeps
        rng = np.random.default_rng(self.seed)
        key = jax.random.PRNGKey(self.seed)

        y, m, owner, offset = _segments(data, self.horizon)
        n_traj = data.n_trajectories
        n_hold = int(round(self.holdout * n_traj)) if (n_traj >= 10 and not learn_starts) else 0
        held_traj = rng.permutation(n_traj)[:n_hold]
        is_held = np.isin(owner, held_traj)
        pinv = np.linalg.pinv(proj)
        z_init = y[:, 0] @ pinv.T  # (S, D)
        if state_dim > obs_dim:
            # hidden coordinates start small and random: at exactly zero, a hidden direction
            # with no coupling yet gets no gradient (a saddle of the loss)
            null = np.eye(state_dim) - pinv @ proj
            scale = 0.3 * float(np.std(y[:, 0]) or 1.0)
            z_init = z_init + (scale * rng.normal(size=z_init.shape)) @ null.T

        energy, spec = self._initial_energy(data, key, state_dim, z_init)
        params = {"energy": eqx.filter(energy, eqx.is_inexact_array)}
        static = eqx.filter(energy, eqx.is_inexact_array, inverse=True)
        if learn_starts:
            params["starts"] = jnp.asarray(z_init)
        proj_j = jnp.asarray(proj)
        y_j, m_j = jnp.asarray(y), jnp.asarray(m, dtype=float)
        z_fixed = jnp.asarray(z_init)
        horizon, checkpoint = self.horizon, self.checkpoint
        self.n_train_traces_ = 0  # how often the train step was traced (compiled)

        def loss_fn(params, idx):
            e = eqx.combine(params["energy"], static)
            z = params["starts"][idx] if learn_starts else z_fixed[idx]
            pred = jax.vmap(lambda s: rollout_observed(e, s, horizon, substeps, h, checkpoint))(z)
            resid = (y_j[idx, 1:] - pred @ proj_j.T) * m_j[idx, 1:, None]
            total = jnp.sum(resid**2)
            count = jnp.sum(m_j[idx, 1:]) * obs_dim
            if learn_starts:
                r0 = (y_j[idx, 0] - z @ proj_j.T) * m_j[idx, 0, None]
                total = total + jnp.sum(r0**2)
                count = count + jnp.sum(m_j[idx, 0]) * obs_dim
            return total / count

        if self.optimiser not in ("adam", "lbfgs"):
            raise ValueError(f"optimiser must be 'adam' or 'lbfgs', got {self.optimiser!r}")
        if self.optimiser == "lbfgs":
            # full batch, deterministic: L-BFGS with a zoom line search
            optimiser = optax.lbfgs()
            value_and_grad = optax.value_and_grad_from_state(loss_fn)

            @jax.jit
            def train_step(params, opt_state, idx):
                self.n_train_traces_ += 1  # Python side effect: runs only while tracing
                loss, grads = value_and_grad(params, idx, state=opt_state)
                with jax.numpy_dtype_promotion("standard"):
                    updates, opt_state = optimiser.update(
                        grads, opt_state, params, value=loss, grad=grads,
                        value_fn=lambda p: loss_fn(p, idx),
                    )  # fmt: skip
                return optax.apply_updates(params, updates), opt_state, loss
        else:
            optimiser = warmup_cosine_adam(self.learning_rate, self.steps)

            @jax.jit
            def train_step(params, opt_state, idx):
                self.n_train_traces_ += 1  # Python side effect: runs only while tracing
                loss, grads = jax.value_and_grad(loss_fn)(params, idx)
                with jax.numpy_dtype_promotion("standard"):  # Optax's int32 step count
                    updates, opt_state = optimiser.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state, loss

        if self.optimiser == "lbfgs":
            opt_state = lbfgs_state(params, optimiser)  # strongly typed: traced once
        else:
            opt_state = optimiser.init(params)

        evaluate = jax.jit(loss_fn)
        train_idx = np.flatnonzero(~is_held)
        held_idx = jnp.asarray(np.flatnonzero(is_held))
        batch = (
            train_idx.size if self.optimiser == "lbfgs" else min(self.batch_size, train_idx.size)
        )
        result = run_training(
            params,
            opt_state,
            train_step,
            lambda: (jnp.asarray(rng.choice(train_idx, size=batch, replace=False)),),
            lambda p, mean_loss: float(evaluate(p, held_idx)) if n_hold else mean_loss,
            steps=self.steps,
            patience=self.patience,
            score_name="held-out" if n_hold else "training",
            progress=self.progress,
            rng=rng,
            divergence_hint=" (the rollout diverged: try more substeps or a smaller learning rate)",
        )
        best_params, history, stop_reason = result.params, result.history, result.stop_reason
        params = best_params
        energy = eqx.combine(params["energy"], static)
        starts = np.asarray(params["starts"]) if learn_starts else z_init
        temperature, noise, lag_var = self._noise(energy, starts, y, m, proj, substeps, h, dt_obs)
        states = starts if learn_starts else y[:, 0]  # (without a projection y is the state)
        energy = shift_to_zero_min(energy, states)
        all_idx = jnp.arange(y.shape[0])
        final_loss = float(evaluate(params, all_idx))
        n_params = sum(int(np.size(v)) for v in jax.tree_util.tree_leaves(params))
        codes = _codes(final_loss, y, m, n_params, obs_dim)
        self.starts_ = starts
        self.segment_owner_ = owner  # trajectory of each segment
        self.segment_start_ = offset  # time index where each segment starts
        self.model_ = fitted_model(
            data,
            energy,
            temperature=float(temperature),
            energy_spec=spec,
            method=self.method,
            diagnostics={
                "rollout_mse": final_loss,
                **codes,
                "observation_noise": float(noise),
                "residual_variance_by_lag": lag_var,
                "horizon": self.horizon,
                "substeps": substeps,
                "model_step": h,
                "n_segments": int(y.shape[0]),
                "learned_starts": bool(learn_starts),
                "temperature_fixed": self.temperature is not None,
                "notes": [
                    "T and the observation noise come from a first-order fit of residual "
                    "variance against lag"
                ],
            },
            identifiability=_identifiability(learn_starts, proj),
            history=history,
            stop_reason=stop_reason,
            fit_seconds=time.perf_counter() - start_time,
            states=states,
        )
        return self

    def _initial_energy(self, data, key, state_dim, z_init):
        if isinstance(self.energy, AbstractEnergy):
            return self.energy, type(self.energy).__name__
        observed = state_dim == data.dim  # warm start only when the full state is observed
        states = data.observed_states() if observed else z_init
        return warm_started_energy(
            self.energy, state_dim, states, key, self.seed, data if observed else None
        )

    def _noise(self, energy, starts, y, m, proj, substeps, h, dt_obs):
        preds = jax.vmap(lambda s: rollout_observed(energy, s, self.horizon, substeps, h))(
            jnp.asarray(starts)
        )
        resid = (y[:, 1:] - np.asarray(preds) @ proj.T) ** 2  # (S, H, m)
        mask = m[:, 1:, None]
        lags = min(self.horizon, 4)
        var = [
            float(np.sum(resid[:, k] * mask[:, k]) / max(np.sum(mask[:, k]) * proj.shape[0], 1))
            for k in range(lags)
        ]
        c = 1.0 if (self.hidden_starts or self.projection is not None) else 2.0
        if lags >= 2:
            slope, intercept = np.polyfit(np.arange(1, lags + 1) * dt_obs, var, 1)
        else:
            slope, intercept = var[0] / dt_obs, 0.0
        temperature = max(slope / 2.0, 0.0) if self.temperature is None else self.temperature
        if self.temperature is not None:
            intercept = var[0] - 2 * self.temperature * dt_obs
        noise = float(np.sqrt(max(intercept / c, 0.0)))
        return temperature, noise, var


def _identifiability(learn_starts: bool, proj: np.ndarray) -> dict[str, str]:
    out = {
        "energy": "E up to an additive constant, in units where dx/dt = −∇E",
        "gradient_region": "∇E is determined only where the (rolled-out) states go",
        "constant": "shifted so min over the segment starts = 0",
    }
    if proj.shape[0] < proj.shape[1]:
        out["hidden_coordinates"] = (
            "the unobserved coordinates are determined only up to transformations that "
            "leave the observed dynamics unchanged (e.g. rotations of the hidden subspace)"
        )
    if learn_starts:
        out["starts"] = "segment starts are learned; each is determined only near the data"
    return out


def _codes(mse: float, y: np.ndarray, m: np.ndarray, n_params: int, obs_dim: int) -> dict:
    """Gaussian codes (bits) of the observations given the rollout and given no motion
    (every observation predicted by its segment's first one), with ``½ log₂ n + 1`` bits per
    parameter (starts included) and data precision ``1e-8`` of the coordinate scale."""
    import math

    mask = m[:, 1:]
    n = float(mask.sum() * obs_dim)
    still = float(np.sum(((y[:, 1:] - y[:, :1]) ** 2) * mask[..., None]) / max(n, 1.0))
    epsilon = 1e-8 * (float(np.max(np.abs(y))) or 1.0)

    def bits(variance: float, k: int) -> float:
        variance = max(variance, epsilon**2 / 12)
        data = 0.5 * n * math.log2(2 * math.pi * math.e * variance)
        return data + k * (0.5 * math.log2(max(n, 2.0)) + 1.0) + n * math.log2(1 / epsilon)

    return {"code_length_bits": bits(mse, n_params), "null_code_bits": bits(still, 0)}
