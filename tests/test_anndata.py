"""AnnData in, results back into the AnnData: reading single-cell time courses (time labels,
embeddings), :func:`iel.fit_anndata`'s write-back and the ``iel fit`` options for ``.h5ad``.

The cells are fresh samples of a known Ornstein–Uhlenbeck process (``E = ½ Σ aᵢ xᵢ²`` in the
first two principal components), written as real ``.h5ad`` files with anndata."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

anndata = pytest.importorskip("anndata")
pd = pytest.importorskip("pandas")
sparse = pytest.importorskip("scipy.sparse")

from typer.testing import CliRunner  # noqa: E402

import iel  # noqa: E402
from iel.cli import app  # noqa: E402
from iel.data import DataError, load_data  # noqa: E402
from iel.data.anndata_io import parse_label, parse_time_labels, read_anndata  # noqa: E402
from iel.plotting import plot_embedding_landscape  # noqa: E402
from iel.single_cell import write_results  # noqa: E402

# the process, in days: dX = −a∘X dt + √(2T) dW, observed on days 0, 1, 2 and 4
STIFFNESS = np.array([1.0, 0.6, 1.5, 1.0, 1.0, 1.0]) * 0.1
TEMPERATURE = 0.05
START_MEAN, START_VAR = np.array([2.0, -1.5, 0.0, 0.0, 0.0, 0.0]), 0.1
DAYS = (0, 1, 2, 4)
UMAP = np.array([[1.0, 0.5], [-0.3, 1.0]])  # the "UMAP": a fixed linear map of PC 1–2


def _cells(n: int, seed: int = 1, days=DAYS, labels=None, genes: int = 40) -> anndata.AnnData:
    """``n`` fresh cells per day of the OU process: ``obsm["X_pca"]`` the state (6 columns),
    ``obsm["X_umap"]`` a linear picture of PC 1–2, ``obs["day"]`` categorical strings, ``X`` a
    sparse matrix of genes."""
    rng = np.random.default_rng(seed)
    a, temp = STIFFNESS, TEMPERATURE
    xs = []
    for day in days:  # the exact OU marginals from N(m₀, v₀)
        mean = START_MEAN * np.exp(-a * day)
        var = temp / a + (START_VAR - temp / a) * np.exp(-2 * a * day)
        xs.append(mean + np.sqrt(var) * rng.standard_normal((n, len(a))))
    x = np.concatenate(xs)
    labels = labels or [f"day{d}" for d in days]
    obs = pd.DataFrame(
        {"day": pd.Categorical(np.repeat(labels, n)), "batch": "b1"},
        index=[f"cell{i}" for i in range(len(x))],
    )
    counts = sparse.random(len(x), genes, density=0.1, format="csr", random_state=seed)
    return anndata.AnnData(X=counts, obs=obs, obsm={"X_pca": x, "X_umap": x[:, :2] @ UMAP})


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "label, number",
    [("day0", 0), ("D2.5", 2.5), ("E7.5", 7.5), ("12h", 12), ("day 3", 3), ("48hr", 48),
     ("t=3", 3), ("Day_14", 14), ("0.5", 0.5), (7, 7)],
)  # fmt: skip
def test_a_number_is_read_out_of_common_time_labels(label, number):
    assert parse_label(label)[0] == number


def test_labels_become_times_in_order_and_bad_labels_are_named():
    labels, times, _ = parse_time_labels(pd.Series(["day5", "day0", "day12", "day0"]))
    assert labels == ["day0", "day5", "day12"] and times.tolist() == [0, 5, 12]  # not "12" < "5"
    order = pd.Categorical(["early", "mid", "late"], ["early", "mid", "late"], ordered=True)
    labels, times, rule = parse_time_labels(pd.Series(order))
    assert labels == ["early", "mid", "late"] and times.tolist() == [0, 1, 2] and "order" in rule
    backwards = pd.Categorical(["day5", "day0"], ["day5", "day0"], ordered=True)
    with pytest.raises(DataError, match="do not increase along the order"):
        parse_time_labels(pd.Series(backwards))
    with pytest.raises(DataError, match="'early', 'late'"):
        parse_time_labels(pd.Series(["early", "late", "day2"]))
    with pytest.raises(DataError, match="mix units"):
        parse_time_labels(pd.Series(["12h", "2d"]))


def test_an_h5ad_file_is_read_by_detecting_time_and_basis(tmp_path):
    """obs["Day"] (any case) is found and its string labels read, X_pca is the state, the
    first K components are taken, and the sparse X of genes is never touched."""
    adata = _cells(30, days=(0, 2, 5), labels=["day0", "D2", "day 5"])
    adata.obs = adata.obs.rename(columns={"day": "Day"})
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    cells, record = read_anndata(path, n_components=3)
    assert record.time_key == "Day" and record.basis == "X_pca"
    assert record.mapping() == {"day0": 0.0, "D2": 2.0, "day 5": 5.0}
    assert record.cells_per_time == (30, 30, 30) and (record.n_components, record.basis_width) == (
        3,
        6,
    )
    np.testing.assert_array_equal(cells.x, adata.obsm["X_pca"][:, :3])  # row i is cell i
    np.testing.assert_array_equal(cells.t, np.repeat([0.0, 2.0, 5.0], 30))
    assert "Day" in " ".join(record.describe()) and "'D2' → 2" in " ".join(record.describe())
    loaded = load_data(path, basis="pca", n_components=2)  # "pca" is X_pca
    assert loaded.dim == 2 and len(loaded.times) == 3
    with pytest.raises(DataError, match="n_components: expected 1 to 6"):
        read_anndata(path, n_components=7)


def test_what_cannot_be_detected_is_an_error_listing_the_keys(tmp_path):
    adata = _cells(10)
    adata.obs = adata.obs.rename(columns={"day": "sample"})
    with pytest.raises(DataError, match=r"no time column.*'sample', 'batch'.*time_key"):
        read_anndata(adata)
    adata.obs["time"], adata.obs["age"] = 1.0, 2.0
    with pytest.raises(DataError, match="several obs columns could be the time"):
        read_anndata(adata)
    del adata.obs["age"]
    adata.obs["time"] = adata.obs["sample"].cat.codes.astype(float) * 0.5  # numeric times
    assert read_anndata(adata)[1].times == (0.0, 0.5, 1.0, 1.5)
    del adata.obsm["X_pca"]
    with pytest.raises(DataError, match=r"no X_pca in obsm.*'X_umap'.*basis="):
        read_anndata(adata)
    with pytest.raises(DataError, match=r"no obsm\['X_tsne'\]; obsm has 'X_umap'"):
        read_anndata(adata, basis="X_tsne")
    adata.obs.loc["cell3", "time"] = np.nan
    with pytest.raises(DataError, match="1 cells have no time.*'cell3'"):
        read_anndata(adata, basis="X_umap")
    npz = tmp_path / "cells.npz"
    np.savez(npz, x=np.zeros((4, 2)), t=[0, 0, 1, 1])
    with pytest.raises(DataError, match=r"time_key, basis apply to .h5ad"):
        load_data(npz, time_key="day", basis="X_pca")


def test_x_is_densified_only_when_asked_and_then_with_a_warning(tmp_path):
    adata = _cells(10, genes=150)
    del adata.obsm["X_pca"], adata.obsm["X_umap"]
    path = tmp_path / "genes.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(DataError, match="basis='X' for the expression matrix"):
        load_data(path)
    with pytest.warns(UserWarning, match=r"densifying a sparse 40 × 150 matrix \(0.0 MiB"):
        cells, record = read_anndata(path, basis="X")
    assert cells.dim == 150 and record.notes
    np.testing.assert_array_equal(cells.x, adata.X.toarray())
    with pytest.warns(UserWarning, match=r"sparse 40 × 5 matrix"):
        assert read_anndata(path, basis="X", n_components=5)[0].dim == 5


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One fit of 600 cells a day on PC 1–2 (the quadratic family: the truth's), kept for the
    tests below: ``(model, annotated copy, original, the file written back)``."""
    adata = _cells(600)
    before = adata.copy()
    model, annotated = iel.fit_anndata(adata, n_components=2, energy="poly:2", copy=True)
    path = tmp_path_factory.mktemp("written") / "cells.h5ad"
    annotated.write_h5ad(path)
    return model, annotated, adata, before, path


def test_fit_anndata_recovers_the_process_from_fresh_samples(fitted):
    """Fresh cells every day (no cell is seen twice), E = ½(0.1 x₀² + 0.06 x₁²) and T = 0.05
    per day: the re-sampled fit (the single-cell default) finds the drift and T."""
    model, annotated, *_ = fitted
    assert model.method.startswith("snapshots-resampled-jko")
    # the reader's hint (cells are destroyed when measured), not a test of the data
    assert model.diagnostics["snapshot_regime"] == "fresh"
    assert "same_particles=False" in model.diagnostics["snapshot_regime_reason"]
    x = annotated.obsm["X_pca"][:, :2]
    truth = -STIFFNESS[:2] * x
    error = np.sqrt(np.mean((np.asarray(model.force(x)) - truth) ** 2) / np.mean(truth**2))
    assert error < 0.1, error  # 0.05 here; 0.67 when fitted as tracked cells (resampled=False)
    stderr = model.diagnostics["temperature_stderr"]  # 0.008 here
    assert model.diagnostics["temperature_identified"] and stderr < 0.02, stderr
    assert abs(model.temperature - TEMPERATURE) < 0.25 * TEMPERATURE, model.temperature


def test_results_are_written_back_under_the_ecosystems_names(fitted):
    """Read back from the file: obs["iel_potential"] is E on each cell, velocity_pca is −∇E
    (zeros beyond the two fitted components), velocity_umap its picture through the linear
    UMAP, and uns["iel"] says what was read and fitted; copy=True left the input alone."""
    model, _, original, before, path = fitted
    assert "iel_potential" not in original.obs and "velocity_pca" not in original.obsm
    assert original.obs.equals(before.obs) and original.obsm.keys() == before.obsm.keys()
    back = anndata.read_h5ad(path)
    x = back.obsm["X_pca"][:, :2]
    np.testing.assert_allclose(back.obs["iel_potential"], np.asarray(model.energy(x)), atol=1e-12)
    velocity = back.obsm["velocity_pca"]
    assert velocity.shape == (len(x), 6) and not velocity[:, 2:].any()
    np.testing.assert_allclose(velocity[:, :2], -np.asarray(model.grad(x)), atol=1e-12)
    np.testing.assert_allclose(back.obsm["velocity_umap"], velocity[:, :2] @ UMAP, atol=1e-3)
    uns = back.uns["iel"]
    assert uns["time_key"] == "day" and list(uns["time_labels"]) == [f"day{d}" for d in DAYS]
    assert list(uns["time_values"]) == list(DAYS) and uns["basis"] == "X_pca"
    assert uns["n_components"] == 2 and uns["temperature"] == pytest.approx(model.temperature)
    assert json.loads(uns["report_json"])["energy_spec"] == model.energy_spec
    ax = plot_embedding_landscape(back)
    assert len(ax.collections) >= 2  # the cells and the arrows
    del back.obsm["velocity_umap"]
    with pytest.raises(ValueError, match=r"needs obsm\['velocity_umap'\]"):
        plot_embedding_landscape(back)


def test_fit_anndata_writes_in_place_and_replaces_only_its_own_keys():
    """copy=False writes into the AnnData; a second run replaces the first's keys, while a
    velocity_umap another tool wrote is refused (before fitting) unless overwrite=True."""
    adata = _cells(150)
    model = iel.fit_anndata(adata, time_key="day", n_components=2, energy="poly:2")
    assert isinstance(model, iel.FittedModel)
    assert {"velocity_pca", "velocity_umap"} <= set(adata.obsm) and "iel" in adata.uns
    adata.obs["iel_potential"] = 0.0  # an earlier run's keys are replaced
    write_results(adata, model, read_anndata(adata, n_components=2)[1])
    assert adata.obs["iel_potential"].max() > 0
    scvelo = _cells(150)
    scvelo.obsm["velocity_umap"] = np.ones((len(scvelo), 2))
    with pytest.raises(DataError, match=r"already holds obsm/velocity_umap, not written by iel"):
        iel.fit_anndata(scvelo, n_components=2, energy="poly:2")
    assert (scvelo.obsm["velocity_umap"] == 1).all() and "iel_potential" not in scvelo.obs
    iel.fit_anndata(scvelo, n_components=2, energy="poly:2", overwrite=True)
    assert not (scvelo.obsm["velocity_umap"] == 1).all()


def test_the_cli_writes_back_to_the_model_folder_and_leaves_the_input(tmp_path):
    path = tmp_path / "cells.h5ad"
    _cells(150).write_h5ad(path)
    digest = _digest(path)
    runner = CliRunner()
    common = ["fit", str(path), "--n-components", "2", "--energy", "poly:2"]
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "m"), "--write-back"])
    assert result.exit_code == 0, result.output
    assert "'day0' → 0" in result.output and "X_pca, components 1–2 of 6" in result.output
    assert _digest(path) == digest  # the input is untouched
    back = anndata.read_h5ad(tmp_path / "m" / "cells.h5ad")
    assert "iel_potential" in back.obs and "velocity_umap" in back.obsm
    assert (tmp_path / "m" / "embedding.png").stat().st_size > 0
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    assert report["single_cell"]["time_labels"] == [f"day{d}" for d in DAYS]
    assert report["outputs"]["cells.h5ad"] == "written"

    result = runner.invoke(app, [*common, "--out", str(tmp_path / "n"), "--overwrite-input"])
    assert result.exit_code == 2 and "pass both" in result.output
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "n"), "--write-back",
                                 "--overwrite-input"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "n" / "cells.h5ad").exists()
    assert "iel_potential" in anndata.read_h5ad(path).obs  # written into the input


def test_single_cell_options_on_other_files_are_refused(tmp_path):
    npz = tmp_path / "snaps.npz"
    np.savez(npz, x=np.zeros((4, 2)), t=[0, 0, 1, 1])
    result = CliRunner().invoke(app, ["fit", str(npz), "--basis", "X_pca", "--write-back"])
    assert result.exit_code == 2
    assert "--basis, --write-back apply to .h5ad" in result.output


def test_a_write_back_that_fails_after_the_fit_is_a_note_not_a_failed_run(tmp_path):
    """The cells carry another tool's velocity_umap: the write-back refuses to replace it, the
    run still succeeds with the model saved, and the report says what was not written."""
    adata = _cells(100)
    adata.obsm["velocity_umap"] = np.ones((len(adata), 2))
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    command = ["fit", str(path), "--n-components", "2", "--energy", "poly:2", "--out",
               str(tmp_path / "m"), "--write-back"]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "note:" in result.output and "not written by iel" in result.output
    assert (tmp_path / "m" / "model.json").exists() and not (tmp_path / "m" / "cells.h5ad").exists()
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    assert report["outputs"]["cells.h5ad"].startswith("skipped (DataError")
    assert report["outputs"]["embedding.png"].startswith("skipped")
