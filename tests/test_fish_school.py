"""The real data set: the fish school's polarisation, read from the installed PyDaddy's file.

PyDaddy is optional (``pip install --no-deps pydaddy``) and never imported: the loader finds
the file through the distribution's metadata.  Without it, the data tests are skipped with a
reason and the loader's error is checked; the example is not in the gallery's list of
``test_examples`` (whose examples need no optional package) and is run here instead.
"""

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
from test_examples import ROOT, _check_page, _run

import iel
from iel import datasets


def _has_pydaddy() -> bool:
    try:
        importlib.metadata.distribution("pydaddy")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_pydaddy = pytest.mark.skipif(
    not _has_pydaddy(),
    reason="the fish-school data ship with PyDaddy, not installed: pip install --no-deps pydaddy",
)


def test_loader_names_the_install_command_when_pydaddy_is_absent(monkeypatch):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(datasets.importlib.metadata, "distribution", absent)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps pydaddy"):
        iel.load_fish_school()


def test_loader_says_which_file_is_missing_from_an_installed_pydaddy(monkeypatch, tmp_path):
    class WithoutData:
        version = "0.9"

        def locate_file(self, path):
            return tmp_path / path

    monkeypatch.setattr(datasets.importlib.metadata, "distribution", lambda name: WithoutData())
    with pytest.raises(FileNotFoundError, match=r"ectropus\.csv.*0\.9.*pip install"):
        iel.load_fish_school()


@needs_pydaddy
def test_fish_school_is_one_polarisation_trajectory_with_the_documented_step():
    traj = iel.load_fish_school()
    assert traj.x.shape == (1, 24635, 2)
    assert np.allclose(traj.time_steps()[:5], 0.12)
    missing = ~traj.observed[0]
    assert missing.sum() == 16 and np.isnan(traj.x[0, missing]).any(axis=1).all()
    radius = np.linalg.norm(traj.observed_states(), axis=1)
    assert radius.max() < 1 + 1e-4, "a polarisation is a mean of unit vectors"
    assert 0.8 < radius.mean() < 0.83  # mostly ordered (0.815)
    # a transition across the 13 missing frames keeps its true Δt
    assert np.isclose(traj.time_steps().max(), 0.12 * 12)
    part = iel.load_fish_school(6000, 9000)
    assert part.x.shape == (1, 3000, 2) and part.mask is None
    assert np.array_equal(part.x[0], traj.x[0, 6000:9000])
    with pytest.raises(ValueError, match="at least 2"):
        iel.load_fish_school(24634)


@needs_pydaddy
def test_fish_school_example_quick(tmp_path):
    """The example on 3 000 frames: its own assertions check the ring of −T̂ log p, the bowl
    of the fitted E and the state-dependent noise."""
    result = _run("fish_school", tmp_path, "--quick")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    page = _check_page("fish_school", tmp_path)
    assert "--quick` (small sizes)" in page and "mean \\|m\\| under exp(−E/T̂)" in page


def test_fish_school_page_is_linked_from_the_gallery():
    index = (ROOT / "docs" / "gallery" / "index.md").read_text()
    assert "(fish_school.md)" in index
    assert Path(ROOT / "docs" / "gallery" / "fish_school.md").is_file()


@pytest.mark.slow
@needs_pydaddy
def test_fish_school_example_full_size(tmp_path):
    """The full series, as it writes docs/gallery/fish_school.md (the energy 'auto' search on
    24 618 steps: several minutes)."""
    result = _run("fish_school", tmp_path, timeout=1800)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    page = _check_page("fish_school", tmp_path)
    assert "energy 'auto' (one-step): family" in page
