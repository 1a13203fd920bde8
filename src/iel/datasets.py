"""Real data sets, read at run time from files that ship inside packages on PyPI (never copied
into iel).

``load_fish_school()`` — the polarisation of a school of the cichlid fish *Etroplus
suratensis*, ``m(t) = (1/N) Σᵢ (cos θᵢ, sin θᵢ)``, the mean heading of the fish: ``|m| ≈ 0``
for a disordered group, ``|m| ≈ 1`` for a school all swimming one way (Jhawar et al., "Noise-
induced schooling of fish", Nature Physics 16, 488–493, 2020).  The series ships with PyDaddy
(Nabeel, Karichannavar et al., GPL-3) as ``pydaddy/data/fish_data/ectropus.csv``: one
``(m_x, m_y)`` row per frame, 24 635 rows, sampled every ``t_inc = 0.12`` s (the interval
``pydaddy.load_sample_dataset("fish-data-etroplus")`` returns).  The file is located through
the installed distribution's metadata; PyDaddy itself is never imported, so
``pip install --no-deps pydaddy`` is enough.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from .data.trajectories import Trajectories

FISH_SCHOOL_PACKAGE = "pydaddy"
FISH_SCHOOL_FILE = "pydaddy/data/fish_data/ectropus.csv"
FISH_SCHOOL_DT = 0.12  # seconds between frames (PyDaddy's t_inc for this data set)
FISH_SCHOOL_INSTALL = "pip install --no-deps pydaddy"


def fish_school_path() -> Path:
    """Where the installed PyDaddy keeps the fish-school series; a clear error naming the
    install command when it is not installed or the file is missing."""
    try:
        distribution = importlib.metadata.distribution(FISH_SCHOOL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the fish-school data set ships with the package {FISH_SCHOOL_PACKAGE!r}, which is "
            f"not installed: run `{FISH_SCHOOL_INSTALL}` (its own dependencies are not needed "
            "to read the file)"
        ) from None
    path = Path(str(distribution.locate_file(FISH_SCHOOL_FILE)))
    if not path.is_file():
        raise FileNotFoundError(
            f"expected {FISH_SCHOOL_FILE} in the installed {FISH_SCHOOL_PACKAGE} "
            f"{distribution.version}, found no file at {path}: reinstall it with "
            f"`{FISH_SCHOOL_INSTALL}` (the data set ships with version 1.0.0)"
        )
    return path


def load_fish_school(start: int = 0, stop: int | None = None) -> Trajectories:
    """The fish school's polarisation ``m = (m_x, m_y)`` as one trajectory, ``dt = 0.12`` s.

    Frames where the file has ``NaN`` (16 rows: frames where the tracking lost the fish) are
    marked missing in the trajectory's ``mask``; a transition then joins the observed frames on
    either side of the gap with its true ``Δt``.

    Args:
        start, stop: keep the frames ``start:stop`` only (a quick look at a stretch of the
            series); by default all of them.

    Raises:
        FileNotFoundError: PyDaddy is not installed (the message names the command).
    """
    x = np.loadtxt(fish_school_path(), delimiter=",", dtype=float, ndmin=2)
    if x.shape[1] != 2:
        raise ValueError(f"{FISH_SCHOOL_FILE}: expected two columns (m_x, m_y), got {x.shape}")
    x = x[start:stop]
    if len(x) < 2:
        raise ValueError(
            f"frames {start}:{stop}: expected at least 2 of the file's frames, got {len(x)}"
        )
    observed = np.isfinite(x).all(axis=1)
    x = np.where(observed[:, None], x, np.nan)
    mask = None if observed.all() else observed[None]
    return Trajectories(x[None], dt=FISH_SCHOOL_DT, mask=mask)
