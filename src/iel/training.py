"""The optimisation loop shared by the iterative estimators: minibatch steps, periodic
evaluation, early stopping on a score, the best parameters kept, and the reason it stopped."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from .data.files import atomic_file
from .energies.features import FeatureEnergy
from .parallel.devices import shard_batch


def coefficient_units(theta):
    """``s_i = max(|θ_i|, 0.1·rms θ)``: the size each coefficient is trained in units of."""
    return jnp.maximum(jnp.abs(theta), 0.1 * jnp.sqrt(jnp.mean(theta**2)) + 1e-300)


def trainable(energy):
    """``(params, build)`` with ``build(params)`` the energy.

    A feature energy (``θᵀφ + c``) trains only its coefficients, each in units of its starting
    size (``θ_i = s_i u_i``, ``s_i = max(|θ_i|, 0.1·rms θ)``): Adam moves every parameter by
    about the learning rate, which would otherwise wipe out the small coefficients of high
    powers.  Other energies train all their arrays as they are."""

    if isinstance(energy, FeatureEnergy) and bool(jnp.any(energy.theta != 0)):
        theta = energy.theta
        unit = coefficient_units(theta)
        return theta / unit, lambda u: eqx.tree_at(lambda e: e.theta, energy, u * unit)
    params, static = eqx.partition(energy, eqx.is_inexact_array)
    return params, lambda p: eqx.combine(p, static)


def warmup_cosine_adam(learning_rate: float, steps: int):
    """Adam with a linear warm-up over the first 5 % of ``steps`` to ``learning_rate``, then
    cosine decay to a twentieth of it."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, max(steps // 20, 1), steps, learning_rate / 20
    )
    return optax.adam(schedule)


def adam_step(optimiser, loss):
    """A jitted ``(params, opt_state, *batch) -> (params, opt_state, loss)`` for ``loss``."""

    @jax.jit
    def step(params, opt_state, *batch):
        value, grads = jax.value_and_grad(loss)(params, *batch)
        # Optax mixes its int32 step count with floats; allow that under strict promotion
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


LBFGS = optax.lbfgs()  # one instance, so that compiled chunks are reused across fits


def lbfgs_state(params, optimiser=LBFGS):
    """``optimiser.init(params)`` (an ``optax.lbfgs``) with every leaf strongly typed.

    The fresh state holds weakly typed scalars (the step count, the line search's value and
    step size) that come back strongly typed from the first update, so a chunk called with
    the fresh state would be compiled twice: once for the first call and once for the rest
    (``tests/test_estimators.py`` counts the traces).  Built as one compiled program: eagerly,
    each of the state's zero-filled leaves compiled its own (about 0.25 s on two cores)."""
    return _strong_state(optimiser, params)


@eqx.filter_jit
def _strong_state(optimiser, params, flat: bool = False):
    if flat:
        params = ravel_pytree(params)[0]
    with jax.numpy_dtype_promotion("standard"):
        state = optimiser.init(params)
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf, dtype=leaf.dtype), state)


def lbfgs_chunk_state(params):
    """The state :func:`lbfgs_iterations` starts from: :func:`lbfgs_state` of ``params``
    flattened into one vector (strongly typed; flattened inside the one compiled program)."""
    return _strong_state(LBFGS, params, flat=True)


@eqx.filter_jit
def lbfgs_iterations(loss, iterations: int, params, opt_state, *data):
    """``iterations`` full-batch L-BFGS steps (:data:`LBFGS`, zoom line search) on
    ``loss(params, *data)`` in one ``lax.scan``: one dispatch per chunk, not per step.
    Returns ``(params, opt_state, last loss)``; ``opt_state`` from :func:`lbfgs_chunk_state`.
    ``loss`` should be a module-level function (and non-array parts of ``data`` hashable), so
    that later fits reuse the compiled code.

    The optimiser runs on the parameters flattened into one vector: on the tree of a network's
    arrays every L-BFGS and line-search operation was repeated per array, and the program
    took 1.7 times as long to compile (3.6 against 2.1 CPU seconds for ``mlp:64``, a
    third of a cold snapshot fit's compiling; ``benchmarks/compile_profile.py``)."""
    flat, unravel = ravel_pytree(params)
    value_fn = lambda v: loss(unravel(v), *data)  # noqa: E731
    value_and_grad = optax.value_and_grad_from_state(value_fn)

    def body(carry, _):
        flat, opt_state = carry
        with jax.numpy_dtype_promotion("standard"):
            value, grads = value_and_grad(flat, state=opt_state)
            updates, opt_state = LBFGS.update(
                grads, opt_state, flat, value=value, grad=grads, value_fn=value_fn
            )
        return (optax.apply_updates(flat, updates), opt_state), value

    (flat, opt_state), values = jax.lax.scan(body, (flat, opt_state), None, iterations)
    return unravel(flat), opt_state, values[-1]


@dataclass
class TrainingResult:
    params: Any
    best_score: float
    stop_reason: str
    history: dict[str, list[float]] = field(default_factory=dict)


# -- checkpoints -------------------------------------------------------------------------------
CHECKPOINT_FORMAT = 1


@dataclass
class Checkpointer:
    """Where a fit saves the state of its optimisation loops, and what it resumes from.

    Every :func:`run_training` loop of a fit run under :func:`checkpointing` saves, as
    ``loop-<i>.json`` (step, best score, history, random-generator state) and an ``.npz`` of
    the current parameters, the optimiser state and the best parameters: no pickle, so
    loading a checkpoint runs no code.  A fit can hold several loops (``energy="auto"`` fits
    candidates in turn); they are numbered in the order they run.

    Args:
        directory: where checkpoints are written (``None``: nowhere).
        every: write each loop's state after every ``every`` of its steps (0: only when the
            loop ends or is interrupted).  A step is one call of the loop's update: a chunk of
            L-BFGS iterations for chunked L-BFGS fits.
        resume: a directory written by an earlier fit of the same data with the same settings:
            its finished loops are restored without running, the unfinished one continues from
            its last save (bit-identical to an uninterrupted run where the loop is
            deterministic), and later loops run as usual.
    """

    directory: str | Path | None = None
    every: int = 0
    resume: str | Path | None = None

    def __post_init__(self):
        if int(self.every) != self.every or self.every < 0:
            raise ValueError(f"every: expected a whole number of steps ≥ 0, got {self.every!r}")
        if self.every and self.directory is None:
            raise ValueError("every > 0 needs a directory to write the checkpoints to")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: missing, malformed, or from other data/settings."""


def checkpoint_directory(path: str | Path) -> Path:
    """The checkpoint folder for ``path``: ``path`` itself when it holds ``fit.json``, else
    ``path/checkpoint`` (the folder ``iel fit --checkpoint-every`` writes in its output)."""
    path = Path(path)
    for candidate in (path, path / "checkpoint"):
        if (candidate / "fit.json").is_file():
            return candidate
    raise CheckpointError(
        f"{path}: no checkpoint there (expected {path}/fit.json or {path}/checkpoint/fit.json, "
        "written by a fit with a checkpoint interval)"
    )


def fingerprint(data, settings: dict[str, Any]) -> dict[str, Any]:
    """What a resumed fit must share with the checkpointed one: a SHA-256 of ``data``'s arrays
    (each named, with its shape and dtype) and ``settings`` as JSON (arrays by their hash,
    callables left out)."""
    digest = hashlib.sha256(type(data).__name__.encode())
    for name, value in sorted(vars(data).items()):
        if isinstance(value, np.ndarray):
            digest.update(f"{name}{value.shape}{value.dtype}".encode())
            digest.update(np.ascontiguousarray(value))  # the buffer itself: no copy
    described = {k: _jsonable(v) for k, v in sorted(settings.items()) if not callable(v)}
    return {"data_sha256": digest.hexdigest(), **described}


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not callable(v)}
    if isinstance(value, (np.ndarray, jax.Array)):
        array = np.ascontiguousarray(value)
        return f"array{array.shape} sha256:{hashlib.sha256(array).hexdigest()[:16]}"
    return repr(value)


_SESSION: ContextVar[_Session | None] = ContextVar("iel_training_session", default=None)


@contextmanager
def checkpointing(checkpointer: Checkpointer | None = None, fit_fingerprint=None):
    """Run a fit's optimisation loops as one session: under it, :func:`run_training` saves and
    resumes through ``checkpointer`` (``None``: no files), and once one loop is interrupted
    (Ctrl-C) the later loops of the fit return their starting parameters at once, so the fit
    completes quickly.  ``fit_fingerprint`` (:func:`fingerprint`) is written with the
    checkpoints and must match the one in ``checkpointer.resume``."""
    session = _Session(checkpointer or Checkpointer(), fit_fingerprint or {})
    token = _SESSION.set(session)
    try:
        yield session
    finally:
        _SESSION.reset(token)


def fit_interrupted() -> bool:
    """Whether a loop of the running fit (:func:`checkpointing`) was interrupted: loops written
    outside :func:`run_training` check it to skip their work, as run_training's do."""
    session = _SESSION.get()
    return session is not None and session.interrupted


def mark_interrupted() -> None:
    """Record an interrupt (Ctrl-C) caught by a loop written outside :func:`run_training`."""
    session = _SESSION.get()
    if session is not None:
        session.interrupted = True


class _Session:
    def __init__(self, checkpointer: Checkpointer, fit_fingerprint: dict[str, Any]):
        self.checkpointer = checkpointer
        self.loops = 0
        self.interrupted = False
        self.saved: dict[int, tuple[dict, dict[str, np.ndarray]]] = {}
        if checkpointer.resume is not None:
            self.source = checkpoint_directory(checkpointer.resume)
            self.saved = _read_checkpoints(self.source, fit_fingerprint)
        self.directory = None
        if checkpointer.directory is not None:
            self.directory = Path(checkpointer.directory)
            self.directory.mkdir(parents=True, exist_ok=True)
            meta = {"format": CHECKPOINT_FORMAT, "fingerprint": fit_fingerprint}
            with atomic_file(self.directory / "fit.json") as partial:
                partial.write_text(json.dumps(meta, indent=1))

    def save(self, index: int, meta: dict, arrays: dict[str, Any]) -> None:
        if self.directory is None:
            return
        name = f"loop-{index}.step-{meta['step']}.npz"
        with atomic_file(self.directory / name) as partial:
            np.savez(partial, **{k: np.asarray(v) for k, v in arrays.items()})
        meta = {"format": CHECKPOINT_FORMAT, **meta, "arrays": name}
        with atomic_file(self.directory / f"loop-{index}.json") as partial:
            partial.write_text(json.dumps(meta))
        for old in self.directory.glob(f"loop-{index}.step-*.npz"):
            if old.name != name:
                old.unlink(missing_ok=True)


def _read_checkpoints(source: Path, fit_fingerprint: dict[str, Any]):
    """Every loop saved in ``source``, checked against this fit's fingerprint."""
    try:
        meta = json.loads((source / "fit.json").read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{source}/fit.json: cannot read the checkpoint ({err})") from err
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source}: checkpoint format {meta.get('format')!r}; this "
                              f"version reads format {CHECKPOINT_FORMAT}")  # fmt: skip
    saved_print = meta.get("fingerprint", {})
    if saved_print != fit_fingerprint:
        raise CheckpointError(
            f"{source}: the checkpoint is from a different fit; resume needs the same data and "
            "settings (checkpoint → now): " + _differences(saved_print, fit_fingerprint)
        )
    loops = {}
    for path in sorted(source.glob("loop-*.json")):
        try:
            index = int(path.stem.split("-", 1)[1])
            loop = json.loads(path.read_text())
            with np.load(source / loop["arrays"], allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, KeyError) as err:
            raise CheckpointError(f"{path}: cannot read this checkpoint ({err})") from err
        loops[index] = (loop, arrays)
    return loops


def _differences(saved: dict, now: dict) -> str:
    out = []
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            if key == "data_sha256":
                out.append("the data differ")
            else:
                out.append(f"{key}: {saved.get(key, '(unset)')!r} → {now.get(key, '(unset)')!r}")
    return "; ".join(out)


def _leaves(tree) -> list:
    return jax.tree_util.tree_leaves(tree)


def _describe(tree) -> list[list]:
    return [[list(np.shape(leaf)), str(np.asarray(leaf).dtype)] for leaf in _leaves(tree)]


def _rebuild(template, arrays: dict[str, np.ndarray], prefix: str, where: str):
    """``template``'s tree with its leaves read from ``arrays[prefix/i]`` (shapes checked)."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    out = []
    for i, leaf in enumerate(leaves):
        array = arrays.get(f"{prefix}/{i}")
        if array is None or array.shape != np.shape(leaf):
            raise CheckpointError(f"{where}: {prefix} leaf {i} does not match this fit's "
                                  f"(shape {np.shape(leaf)})")  # fmt: skip
        out.append(jnp.asarray(array, dtype=jnp.asarray(leaf).dtype))
    if f"{prefix}/{len(leaves)}" in arrays:
        raise CheckpointError(f"{where}: {prefix} holds more arrays than this fit's")
    return jax.tree_util.tree_unflatten(treedef, out)


def _arrays(**trees) -> dict[str, Any]:
    return {f"{name}/{i}": leaf for name, tree in trees.items()
            for i, leaf in enumerate(_leaves(tree))}  # fmt: skip


def run_training(
    params,
    opt_state,
    train_step: Callable,
    next_batch: Callable[[], tuple],
    score: Callable[[Any, float], float],
    *,
    steps: int,
    patience: int,
    score_name: str = "held-out",
    progress: Callable[[int, int, float], None] | None = None,
    divergence_hint: str = "",
    eval_every: int | None = None,
    rng: np.random.Generator | None = None,
) -> TrainingResult:
    """Run ``train_step(params, opt_state, *next_batch()) -> (params, opt_state, loss)``.

    Every ``eval_every`` steps (default ``max(steps // 100, 10)``)
    ``score(params, mean recent loss)`` is evaluated; the
    parameters with the best score are kept, and training stops after ``patience``
    evaluations without a relative improvement of 1e-4, when the loss or the score turns
    non-finite (the best finite parameters are kept), at ``steps``, or on Ctrl-C
    (``KeyboardInterrupt``: the stop reason starts with ``"interrupted"`` and names the step;
    the best parameters so far are kept).

    With several devices (:func:`iel.parallel.use_devices`) each batch is split over them on
    its leading axis and XLA's SPMD partitioner reduces the loss and its gradient across them
    (data parallelism: the same numbers as one device up to rounding).

    Under :func:`checkpointing` the loop's state is saved and resumed through the session's
    :class:`Checkpointer`; ``rng`` (the generator ``next_batch`` draws from) is saved with it,
    so that a resumed loop draws the same batches.
    """
    eval_every = eval_every or max(steps // 100, 10)
    session = _SESSION.get()
    index = -1
    if session is not None:
        index = session.loops
        session.loops += 1
    signature = {"steps": steps, "patience": patience, "eval_every": eval_every,
                 "score_name": score_name, "params": _describe(params),
                 "opt_state": _describe(opt_state)}  # fmt: skip
    # the loop's state after its last completed step (replaced as a whole, so that an
    # interrupt never sees half of a step)
    done, best, best_step, since_best = 0, np.inf, 0, 0
    best_params, running = params, []
    records: list[tuple[int, float, float]] = []
    rng_state = None if rng is None else rng.bit_generator.state
    stop_reason = None
    if session is not None and session.interrupted:
        stop_reason = ("interrupted before step 1 (an earlier loop of this fit was "
                       "interrupted); kept the starting parameters")  # fmt: skip
    elif session is not None and index in session.saved:
        restored = _restore(session, index, signature, params, opt_state, rng)
        (done, best, best_step, since_best, params, opt_state, best_params, running, records,
         rng_state, stop_reason) = restored  # fmt: skip

    def snapshot(reason):
        meta = {"signature": signature, "step": done, "best": best, "best_step": best_step,
                "since_best": since_best, "running": running, "records": records,
                "rng": rng_state, "stop_reason": reason}  # fmt: skip
        session.save(index, meta, _arrays(params=params, opt_state=opt_state, best=best_params))

    every = session.checkpointer.every if session is not None else 0
    try:
        for step in range(done + 1, steps + 1):
            if stop_reason is not None:
                break
            batch = shard_batch(next_batch())  # split over the fit's devices (if several)
            drawn = None if rng is None else rng.bit_generator.state
            new_params, new_opt_state, loss = train_step(params, opt_state, *batch)
            loss = float(loss)
            if not np.isfinite(loss):
                stop_reason = (f"the loss became non-finite at step {step}{divergence_hint}; "
                               + _kept(best_step, best, score_name))  # fmt: skip
                break
            new_running, new_records = [*running, loss], records
            new_best, new_best_step, new_best_params, new_since = (best, best_step, best_params,
                                                                    since_best)  # fmt: skip
            evaluated = step % eval_every == 0 or step == steps
            pending = None
            if evaluated:
                mean_loss = float(np.mean(new_running))
                value = float(score(new_params, mean_loss))
                if not np.isfinite(value):
                    stop_reason = (
                        f"the {score_name} loss became non-finite at step {step}"
                        f"{divergence_hint}; " + _kept(best_step, best, score_name)
                    )
                    break
                new_records = [*records, (step, mean_loss, value)]
                new_running = []
                if value < best * (1 - 1e-4):
                    new_best, new_best_step, new_best_params, new_since = value, step, new_params, 0
                else:
                    new_since += 1
                if new_since >= patience:
                    pending = (f"early stop at step {step}: the {score_name} loss did not "
                               f"improve for {patience} evaluations")  # fmt: skip
            # commit the step in one assignment
            (done, params, opt_state, running, records, rng_state, best, best_step,
             best_params, since_best, stop_reason) = (
                step, new_params, new_opt_state, new_running, new_records, drawn, new_best,
                new_best_step, new_best_params, new_since, pending)  # fmt: skip
            if every and step % every == 0 and step < steps and pending is None:
                snapshot(None)
            if evaluated and progress is not None:
                progress(step, steps, records[-1][2])
    except KeyboardInterrupt:
        if stop_reason is None:  # (an interrupt after the loop decided to stop changes nothing)
            if session is not None:
                session.interrupted = True
                if session.directory is not None:
                    snapshot(None)  # resumable: continues after step `done`
            evaluated_at = records[-1][0] if records else 0
            if done > evaluated_at and running:  # the latest parameters were never scored
                try:
                    value = float(score(params, float(np.mean(running))))
                    if value < best:
                        best, best_step, best_params = value, done, params
                except KeyboardInterrupt:
                    pass
            stop_reason = f"interrupted at step {done} of {steps}; " + _kept(
                best_step, best, score_name
            )
            if session is not None and session.directory is not None:
                stop_reason += f"; checkpoint in {session.directory} (resume from it)"
    if stop_reason is None:
        stop_reason = f"reached the step limit ({steps})"
    if session is not None and session.directory is not None and not session.interrupted:
        rng_state = None if rng is None else rng.bit_generator.state
        snapshot(stop_reason)
    history = {"step": [r[0] for r in records], "train_loss": [r[1] for r in records],
               "heldout_loss": [r[2] for r in records]}  # fmt: skip
    return TrainingResult(best_params, float(best), stop_reason, history)


def _kept(best_step: int, best: float, score_name: str) -> str:
    if not np.isfinite(best):
        return "kept the starting parameters (none was scored before)"
    return f"kept the parameters of step {best_step} (best {score_name} loss {best:.6g})"


def _restore(session: _Session, index: int, signature: dict, params, opt_state, rng):
    """The state of loop ``index`` read from the session's resume checkpoint."""
    meta, arrays = session.saved[index]
    where = f"{session.source}/loop-{index}.json"
    saved_sig = meta.get("signature")
    if saved_sig != json.loads(json.dumps(signature)):
        raise CheckpointError(
            f"{where}: this loop was checkpointed with other settings; resume needs the same "
            "ones (checkpoint → now): " + _differences(saved_sig or {}, signature)
        )
    params_now = _rebuild(params, arrays, "params", where)
    opt_now = _rebuild(opt_state, arrays, "opt_state", where)
    best_params = _rebuild(params, arrays, "best", where)
    if rng is not None and meta.get("rng") is not None:
        rng.bit_generator.state = meta["rng"]
    records = [tuple(r) for r in meta["records"]]
    return (meta["step"], float(meta["best"]), meta["best_step"], meta["since_best"],
            params_now, opt_now, best_params, list(meta["running"]), records, meta["rng"],
            meta["stop_reason"])  # fmt: skip
