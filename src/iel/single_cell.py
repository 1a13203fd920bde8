"""Single-cell time courses: fit an energy on an AnnData's embedding, write the results back.

:func:`fit_anndata` reads the cells (:func:`~iel.data.anndata_io.read_anndata`: time from
``obs[time_key]``, state the first ``K`` columns of ``obsm[basis]``, ``X_pca`` by default),
fits with :func:`iel.fit` and writes, under the names the ecosystem uses:

* ``obs["iel_potential"]``: ``E(x_i)`` of every cell (additive constant: min over the cells 0);
* ``obsm["velocity_<b>"]`` (``b`` = the basis without ``X_``, e.g. ``velocity_pca``, the
  scVelo convention): the drift ``−∇E(x_i)``.  It has the basis' full width, with zeros in the
  columns beyond the ``K`` that were fitted (the energy does not depend on them), so it lines up
  with ``obsm[basis]`` column for column.  For ``basis="X"`` it is ``obsm["velocity_X"]`` with
  only the ``K`` columns read;
* ``obsm["velocity_umap"]`` when ``obsm["X_umap"]`` is present (and is not the basis): the
  drift carried into the picture by :func:`embed_velocity`;
* ``uns["iel"]``: the temperature, energy spec, formula, method, what was read (time key,
  labels and their times in order, basis, components, cells per time), the written keys and
  the model's whole report as a JSON string (``report_json``).

Cells are destroyed when measured, so every snapshot is a fresh sample of the population:
the reader marks the snapshots so (``Snapshots(same_particles=False)``) and the fit uses the
re-sampled estimator (the JKO condition with its entropy term) unless ``regime="same"`` or a
pairing option (growth, interaction) says the cells are paired.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from .auto import fit as fit_energy
from .data.anndata_io import AnnDataRead, read_anndata
from .data.validation import DataError
from .model import FittedModel
from .selection.families import HIGH_DIMENSION

POTENTIAL_KEY = "iel_potential"
UNS_KEY = "iel"
UMAP_KEY = "X_umap"
# the neighbours of each cell whose embedding positions fit its local linear map, and the most
# cells searched for them (a random subset beyond: the cost is cells × searched × K)
NEIGHBOURS, SEARCHED = 30, 20_000


def single_cell_options(dim: int, options: Mapping) -> tuple[dict, list[str]]:
    """The fit options for cells in ``dim`` components: ``options`` with the single-cell
    defaults filled in, and a line for each default used.

    * fresh samples (the reader's hint, ``Snapshots(same_particles=False)``) unless
      ``regime="same"``, ``resampled=False``, ``method="rollout"`` (which matches whole
      populations) or ``growth``/``reg_m`` (which weight the one-step pairing) say otherwise;
    * for the re-sampled fit (closed form, linear families only) ``energy="auto"`` is the full
      quartic ``poly:4`` below :data:`~iel.selection.families.HIGH_DIMENSION` components and the
      additive quartic ``poly:4:1`` from there on (the full quartic has ``C(K+4, 4) − 1`` terms:
      46 375 at K = 30)."""
    options = dict(options)
    used = []
    pairs_wanted = options.get("growth") not in (None, "none") or options.get("reg_m") is not None
    fresh = (
        options.get("resampled", True)
        and options.get("regime", "auto") in ("auto", "fresh")
        and options.get("method", "auto") != "rollout"
        and not pairs_wanted
    )
    if fresh:
        used.append("fresh samples (cells are destroyed when measured; regime='same' pairs them)")
    if fresh and options.get("energy", "auto") == "auto":
        options["energy"] = "poly:4" if dim < HIGH_DIMENSION else "poly:4:1"
        used.append(f"energy={options['energy']} for {dim} components")
    return options, used


def fit_anndata(adata, time_key: str | None = None, basis: str | None = None,
                n_components: int | None = None, copy: bool = False, overwrite: bool = False,
                **fit_options):  # fmt: skip
    """Fit an energy to the cells of ``adata`` and write the results into it (scanpy style).

    Args:
        adata: an ``anndata.AnnData`` with the time of each cell in ``obs`` and an embedding in
            ``obsm``.
        time_key: the ``obs`` column of the times (detected when ``None``; labels such as
            ``"day2"`` are read as numbers, :func:`~iel.data.anndata_io.parse_time_labels`).
        basis: the ``obsm`` embedding (``X_pca`` when ``None``; ``"X"`` for the expression
            matrix, densified).
        n_components: fit on the first ``K`` columns of the basis (all when ``None``).
        copy: ``False`` writes into ``adata`` and returns the model; ``True`` leaves ``adata``
            as it was and returns ``(model, annotated_copy)``.
        overwrite: replace ``obs``/``obsm``/``uns`` keys of these names that ``iel`` did not
            write (an error names them otherwise); an earlier ``iel`` run's are replaced.
        fit_options: passed to :func:`iel.fit` (``energy``, ``temperature``, ``seed``, …)
            after :func:`single_cell_options` has filled in its defaults.

    Returns:
        the :class:`~iel.model.FittedModel`, or ``(model, copy)`` with ``copy=True``.

    Example:
        >>> model = iel.fit_anndata(adata, time_key="day", n_components=10)
        >>> adata.obs["iel_potential"], adata.obsm["velocity_pca"]
    """
    snapshots, record = read_anndata(adata, time_key, basis, n_components)
    _check_keys_free(adata, record, overwrite)  # before the fit, not after it
    options, _ = single_cell_options(snapshots.dim, fit_options)
    model = fit_energy(snapshots, **options)
    target = adata.copy() if copy else adata
    write_results(target, model, record, snapshots.x, overwrite=overwrite)
    return (model, target) if copy else model


def velocity_key(basis: str) -> str:
    """``obsm`` key of the drift in ``basis``: ``X_pca`` → ``velocity_pca`` (scVelo)."""
    return f"velocity_{basis[2:] if basis.startswith('X_') else basis}"


def write_results(adata, model: FittedModel, record: AnnDataRead, states=None,
                  overwrite: bool = False) -> dict:  # fmt: skip
    """Write the potential, the drift (and its picture in ``X_umap``) and ``uns["iel"]`` into
    ``adata`` (module docstring); ``states`` are the cells' fitted coordinates (read again from
    ``adata`` when ``None``).  Returns ``uns["iel"]``.  Refuses an ``adata`` whose cells are
    not the ones read (a different number of cells), and keys already there that an earlier
    ``iel`` run did not write (scVelo's ``velocity_umap``, say) unless ``overwrite``."""
    if states is None:
        states = read_anndata(adata, record.time_key, record.basis, record.n_components)[0].x
    if len(states) != adata.n_obs:
        raise DataError(f"the fitted states are {len(states)} cells, this AnnData has "
                        f"{adata.n_obs}")  # fmt: skip
    _check_keys_free(adata, record, overwrite)
    potential = np.asarray(model.energy(states), dtype=float)
    drift = np.asarray(model.force(states), dtype=float)
    adata.obs[POTENTIAL_KEY] = potential
    key = velocity_key(record.basis)
    width = record.n_components if record.basis == "X" else record.basis_width
    full = np.zeros((len(states), width))
    full[:, : drift.shape[1]] = drift
    adata.obsm[key] = full
    written = {"potential": f"obs/{POTENTIAL_KEY}", "velocity": f"obsm/{key}"}
    if UMAP_KEY in adata.obsm and record.basis != UMAP_KEY:
        umap = np.asarray(adata.obsm[UMAP_KEY], dtype=float)
        adata.obsm["velocity_umap"] = embed_velocity(states, drift, umap)
        written["velocity_umap"] = "obsm/velocity_umap"
    report = model.report()
    uns = {
        **record.as_dict(),
        "temperature": float(model.temperature),
        "energy_spec": model.energy_spec,
        "formula": model.formula,
        "method": model.method,
        "written": written,
        "report_json": json.dumps(report),
    }
    adata.uns[UNS_KEY] = uns
    return uns


def _check_keys_free(adata, record: AnnDataRead, overwrite: bool) -> None:
    """A :class:`DataError` naming the keys this write would replace that ``iel`` did not
    write (``uns["iel"]["written"]`` lists those it did)."""
    if overwrite:
        return
    ours = set()
    earlier = adata.uns.get(UNS_KEY)
    if isinstance(earlier, Mapping) and isinstance(earlier.get("written"), Mapping):
        ours = {str(v) for v in earlier["written"].values()}
    wanted = [f"obs/{POTENTIAL_KEY}", f"obsm/{velocity_key(record.basis)}"]
    if UMAP_KEY in adata.obsm and record.basis != UMAP_KEY:
        wanted.append("obsm/velocity_umap")
    taken = [
        key for key in wanted
        if key not in ours and key.split("/")[1] in getattr(adata, key.split("/")[0])
    ]  # fmt: skip
    if UNS_KEY in adata.uns and not ours:
        taken.append(f"uns/{UNS_KEY}")
    if taken:
        raise DataError(f"the AnnData already holds {', '.join(taken)}, not written by iel; "
                        "remove them or pass overwrite=True")  # fmt: skip


def embed_velocity(states: np.ndarray, velocity: np.ndarray, embedding: np.ndarray,
                   neighbours: int = NEIGHBOURS, searched: int = SEARCHED,
                   seed: int = 0) -> np.ndarray:  # fmt: skip
    """The velocity ``v_i`` (in the fitted coordinates ``x``) carried into a 2-D embedding
    ``u`` (UMAP) by local linear maps.

    For each cell its ``k = neighbours`` nearest cells in ``x`` (searched among at most
    ``searched`` cells, a fixed random subset beyond) give a least-squares map
    ``A_i = argmin Σ_j ‖(u_j − u_i) − Aᵀ(x_j − x_i)‖² + λ‖A‖²`` (ridge ``λ`` = 10⁻³ of the
    mean eigenvalue of ``Σ_j (x_j − x_i)(x_j − x_i)ᵀ``, so that ``K > k`` stays well posed),
    the derivative of ``x ↦ u`` near the cell; the embedded velocity is ``A_iᵀ v_i``.
    Directions the neighbourhood does not span are mapped to nothing."""
    x = np.asarray(states, dtype=float)
    u = np.asarray(embedding, dtype=float)[:, :2]
    n = len(x)
    if len(u) != n:
        raise DataError(f"the embedding has {len(u)} cells, the states {n}")
    rng = np.random.default_rng(seed)
    pool = np.arange(n) if n <= searched else np.sort(rng.choice(n, searched, replace=False))
    k = min(neighbours, len(pool) - 1)
    out = np.zeros((n, 2))
    if k < 1:
        return out
    ref = x[pool]
    ref_sq = np.sum(ref**2, axis=1)
    for start in range(0, n, 1000):
        block = slice(start, min(start + 1000, n))
        xb = x[block]
        d2 = np.sum(xb**2, axis=1)[:, None] + ref_sq[None, :] - 2 * xb @ ref.T
        idx = pool[np.argpartition(d2, k, axis=1)[:, : k + 1]]  # may include the cell itself
        dx = x[idx] - xb[:, None, :]  # (b, k+1, K)
        du = u[idx] - u[block][:, None, :]  # (b, k+1, 2)
        gram = np.einsum("bjk,bjl->bkl", dx, dx)
        scale = np.einsum("bjk,bjk->b", dx, dx) / x.shape[1]  # the Gram's mean eigenvalue
        gram += (1e-3 * scale + 1e-300)[:, None, None] * np.eye(x.shape[1])
        maps = np.linalg.solve(gram, np.einsum("bjk,bjl->bkl", dx, du))  # (b, K, 2)
        out[block] = np.einsum("bk,bkl->bl", velocity[block], maps)
    return out
