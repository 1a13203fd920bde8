"""What follows a fit never undoes it: the landscape of a constant, 1-D, 5-D or partly
undefined energy is drawn or skipped with a note, and the command exits 0 with the model saved;
output folders are replaced whole or not at all."""

import json

import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
from typer.testing import CliRunner

import iel
import iel.plotting
from iel.cli import app, write_fit_outputs
from iel.data import Trajectories
from iel.data.files import staged_directory
from iel.energies import FeatureEnergy, Monomials
from iel.energies.base import AbstractEnergy
from iel.model import FittedModel


class DefinedInside(AbstractEnergy):
    """``Σ x_j²`` inside the box ``|x_j| ≤ radius``, NaN outside (an energy from a family that
    is undefined beyond the data, such as a log-density estimate)."""

    radius: float

    def __call__(self, x):
        return jnp.where(jnp.all(jnp.abs(x) <= self.radius), jnp.sum(x**2), jnp.nan)

    def config(self):
        raise TypeError("a test energy: not saved")

    @classmethod
    def from_config(cls, config):
        raise TypeError("a test energy: not saved")


def _model(energy, data: Trajectories) -> FittedModel:
    states = data.observed_states()
    return FittedModel(
        energy_module=energy, dynamics=iel.Langevin(0.1), energy_spec="test", method="test",
        data_kind="trajectories", diagnostics={"notes": ["from the fit"]},
        identifiability={"energy": "E up to a constant"},
        data_low=states.min(axis=0), data_high=states.max(axis=0),
    )  # fmt: skip


def _walks(dim: int, rng) -> Trajectories:
    return Trajectories(np.cumsum(rng.normal(size=(20, 10, dim)), axis=1), dt=0.1)


def _outputs(model, data, folder):
    """Save the model (when its energy can be saved) and run the post-fit steps on it."""
    try:
        model.save(folder)
    except TypeError:  # the test energy: only the report, which the post-fit step rewrites
        folder.mkdir()
        (folder / "report.json").write_text(json.dumps(model.report()))
    notes = write_fit_outputs(model, data, folder)
    return notes, json.loads((folder / "report.json").read_text())


def _picture(path):
    """The image as an array (the figure was really drawn: more than one colour)."""
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and np.ptp(image[..., :3]) > 0.1
    return image


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_a_constant_energy_is_drawn_flat(tmp_path, rng, dim):
    data = _walks(dim, rng)
    zero = FeatureEnergy(Monomials(dim, 2), np.zeros(Monomials(dim, 2).n_features))
    notes, report = _outputs(_model(zero, data), data, tmp_path / "m")
    assert notes == [] and report["outputs"] == {"landscape.png": "written"}
    _picture(tmp_path / "m" / "landscape.png")
    assert iel.load(tmp_path / "m").formula == report["formula"]  # the saved model is whole


@pytest.mark.parametrize("dim", [1, 5])
def test_one_and_five_dimensional_energies_are_drawn(tmp_path, rng, dim):
    data = _walks(dim, rng)
    bowl = FeatureEnergy(Monomials(dim, 2), rng.normal(size=Monomials(dim, 2).n_features))
    notes, report = _outputs(_model(bowl, data), data, tmp_path / "m")
    assert notes == [] and report["outputs"]["landscape.png"] == "written"
    _picture(tmp_path / "m" / "landscape.png")


@pytest.mark.parametrize("dim", [1, 2])
def test_an_energy_undefined_outside_the_data_is_drawn_where_defined(tmp_path, rng, dim):
    data = _walks(dim, rng)
    radius = float(np.abs(data.observed_states()).max())  # NaN on the plot's padding only
    model = _model(DefinedInside(radius), data)
    assert np.isnan(np.asarray(model.energy(np.full((1, dim), 1.05 * radius)))).all()
    notes, report = _outputs(model, data, tmp_path / "m")
    assert notes == [] and report["outputs"]["landscape.png"] == "written"
    _picture(tmp_path / "m" / "landscape.png")


def test_an_energy_undefined_everywhere_is_skipped_with_a_note(tmp_path, rng):
    data = _walks(2, rng)
    model = _model(DefinedInside(-1.0), data)  # no point has |x| ≤ −1: NaN everywhere
    notes, report = _outputs(model, data, tmp_path / "m")
    assert len(notes) == 1 and notes[0].startswith("landscape.png was not written")
    assert "not finite anywhere" in notes[0]
    assert report["outputs"]["landscape.png"].startswith("skipped")
    assert report["diagnostics"]["notes"] == ["from the fit", notes[0]]
    assert not (tmp_path / "m" / "landscape.png").exists()


@pytest.fixture
def diffusion(tmp_path, rng):
    """Pure diffusion (a flat energy) observed as trajectories, in a file."""
    path = tmp_path / "flat.npz"
    np.savez(path, x=np.cumsum(rng.normal(scale=0.05, size=(40, 12, 2)), axis=1), dt=0.01)
    return path


def test_a_failing_plot_leaves_the_fit_standing_through_the_command(
    tmp_path, diffusion, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("the plotting backend is gone")

    monkeypatch.setattr(iel.plotting, "save_landscape", broken)
    out = tmp_path / "fit"
    result = CliRunner().invoke(app, ["fit", str(diffusion), "-e", "poly:2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "the plotting backend is gone" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["landscape.png"] == (
        "skipped (RuntimeError: the plotting backend is gone)"
    )
    assert any("landscape.png was not written" in n for n in report["diagnostics"]["notes"])
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.npz", "report.json"]
    assert iel.load(out).energy_spec == "poly:2"


@pytest.mark.slow
def test_the_flat_potential_as_snapshots_fits_and_exits_zero(tmp_path):
    """The reported case: JKOnet*'s flat potential, 1000 particles at 6 times, d = 2."""
    data = tmp_path / "flat.npz"
    runner = CliRunner()
    made = runner.invoke(app, ["simulate", "flat", "--n", "1000", "--steps", "5", "-T", "0.1",
                               "--snapshots", "--seed", "11", "-o", str(data)])  # fmt: skip
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["fit", str(data)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "flat.iel" / "report.json").read_text())
    assert report["outputs"] == {"landscape.png": "written"}
    model = iel.load(tmp_path / "flat.iel")
    grid = np.random.default_rng(0).uniform(-4, 4, size=(200, 2))
    assert np.ptp(np.asarray(model.energy(grid))) < 1e-6  # the right answer: E constant


# -- folders written whole or not at all --------------------------------------------------------


def _bowl_model(rng):
    return _model(FeatureEnergy(Monomials(2, 2), rng.normal(size=5)), _walks(2, rng))


def test_a_failed_save_leaves_no_partial_folder_and_keeps_the_previous_model(tmp_path, rng):
    folder = tmp_path / "m"
    first = _bowl_model(rng)
    first.save(folder)
    (folder / "select.json").write_text("{}")  # the user's other output in the same folder
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    # diagnostics JSON cannot hold: the save fails after model.npz is written
    broken = first.with_diagnostics(details={"unjsonable": object()})
    with pytest.raises(TypeError, match="not JSON serializable"):
        broken.save(folder, overwrite=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    with pytest.raises(TypeError):
        broken.save(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no partial or stray folder
    # a save that succeeds replaces the model and keeps the other file
    second = _bowl_model(rng)
    second.save(folder, overwrite=True)
    assert (folder / "select.json").read_text() == "{}"
    assert iel.load(folder).formula == second.formula != first.formula


def test_a_staged_folder_refuses_to_replace_owned_files_without_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("old")
    with (
        pytest.raises(FileExistsError, match="a.txt"),
        staged_directory(tmp_path / "out", replaces=("a.txt",)),
    ):
        raise AssertionError("the block must not run")
    with staged_directory(tmp_path / "out", replaces=("a.txt",), overwrite=True) as stage:
        (stage / "a.txt").write_text("new")
        assert (tmp_path / "out" / "a.txt").read_text() == "old"  # not visible before the end
    assert (tmp_path / "out" / "a.txt").read_text() == "new"
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"), staged_directory(tmp_path / "file"):
        pass


def test_a_failing_fit_command_keeps_the_previous_model(tmp_path, diffusion):
    out = tmp_path / "fit"
    runner = CliRunner()
    first = runner.invoke(app, ["fit", str(diffusion), "-e", "poly:2", "-o", str(out)])
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    failed = runner.invoke(app, ["fit", str(diffusion), "-e", "nosuchfamily:3", "-o", str(out),
                                 "--force"])  # fmt: skip
    assert failed.exit_code == 2 and "error:" in failed.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit", "flat.npz"]


def test_an_output_that_is_a_file_ends_in_one_error_line(tmp_path, diffusion):
    taken = tmp_path / "taken"
    taken.write_text("the user's file")
    runner = CliRunner()
    for args in (["fit", str(diffusion), "-e", "poly:2"],
                 ["select", str(diffusion), "--families", "poly:2", "--networks", ""]):  # fmt: skip
        result = runner.invoke(app, [*args, "-o", str(taken)])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        assert "error:" in result.output and "Traceback" not in result.output
    assert taken.read_text() == "the user's file"


def test_staged_outputs_get_ordinary_permissions_and_follow_links(tmp_path, rng):
    import os

    model = _bowl_model(rng)
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    model.save(tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and (real / "model.json").exists()
    mask = os.umask(0)
    os.umask(mask)
    model.save(tmp_path / "m")
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's 0o700
    data = tmp_path / "d.npz"
    iel.save_data(data, _walks(1, rng))
    assert data.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0o600
