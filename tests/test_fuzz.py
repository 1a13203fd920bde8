"""Fuzzing the loaders and the command line with Hypothesis: whatever a data file holds (any
shape, dtype, NaN/inf, huge values, wrong keys, unsorted or repeated times, ragged or
non-UTF-8 CSV, an empty file, a folder, a link), reading it gives a valid container or one
:class:`DataError`, and a command ends in a fit or one ``error:`` line with exit status 2 —
never a traceback, never a half-written output folder.

Derandomized and without an example database, so every run tries the same cases."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from iel.cli import app
from iel.data import KINDS, DataError, Endpoints, Samples, Snapshots, Trajectories, load_data
from iel.data.validation import LARGEST_MAGNITUDE

FUZZ = settings(
    max_examples=100,
    deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip

# -- values and arrays --------------------------------------------------------------------------
SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e200, 1e151, 1e149, 0.0, -0.0,
                           5e-324, 1.0, -1.0])  # fmt: skip
NUMBER = st.one_of(st.floats(-10, 10), SPECIAL, st.integers(-5, 5).map(float))
DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint8", "bool", "complex128",
          "U3", "datetime64[s]"]  # fmt: skip


@st.composite
def arrays(draw, max_dims=4, max_side=5):
    shape = tuple(draw(st.lists(st.integers(0, max_side), max_size=max_dims)))
    dtype = draw(st.sampled_from(DTYPES))
    size = int(np.prod(shape))
    values = np.array(draw(st.lists(NUMBER, min_size=size, max_size=size)), dtype=float)
    values = values.reshape(shape)
    if dtype == "U3":
        return values.astype(str).astype(dtype)
    if dtype == "datetime64[s]":
        return np.zeros(shape, dtype=dtype)
    if dtype.startswith(("int", "uint", "bool")):
        return np.nan_to_num(values, posinf=7, neginf=-7).clip(-100, 100).astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


def sometimes(draw, odds: int = 4) -> bool:
    """True about once in ``odds`` draws: one fault at a time keeps most files near valid."""
    return draw(st.integers(1, odds)) == 1


@st.composite
def plausible_arrays(draw, min_dim: int = 0):
    """Arrays near what the loaders expect: x of rank 2 or 3 with now and then a bad value,
    t sorted, shuffled or repeated, dt of any sign, masks of the right or wrong shape, a
    stored kind, starts."""
    n, steps, d = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(min_dim, 3))
    x_shape = draw(st.sampled_from([(n, steps, d), (n * steps, d)]))
    x = draw(st.lists(st.floats(-3, 3), min_size=int(np.prod(x_shape)),
                      max_size=int(np.prod(x_shape))))  # fmt: skip
    x = np.array(x, dtype=float).reshape(x_shape)
    if x.size and sometimes(draw):
        x.flat[draw(st.integers(0, x.size - 1))] = draw(SPECIAL)
    out = {"x": x}
    rows = x_shape[1] if len(x_shape) == 3 else x_shape[0]
    time_kind = draw(st.sampled_from(["dt", "dt", "t-sorted", "t-sorted", "t-shuffled",
                                      "t-repeated", "t-rows", "none"]))  # fmt: skip
    if time_kind == "dt":
        out["dt"] = np.array(draw(SPECIAL if sometimes(draw) else st.floats(1e-3, 1)))
    elif time_kind == "t-sorted":
        out["t"] = np.arange(rows) * 0.1 if len(x_shape) == 3 else np.arange(rows) // 2 * 0.1
    elif time_kind == "t-shuffled":
        out["t"] = np.array(draw(st.permutations(list(np.arange(rows) * 0.5))))
    elif time_kind == "t-repeated":
        out["t"] = np.repeat(np.arange((rows + 1) // 2), 2)[:rows].astype(float)
    elif time_kind == "t-rows" and len(x_shape) == 3:
        out["t"] = np.tile(np.arange(steps, dtype=float), (n, 1))
    if len(x_shape) == 3 and sometimes(draw, 3):
        mask_shape = (
            (n, steps) if not sometimes(draw) else draw(st.sampled_from([(steps, n), (n,)]))
        )
        out["mask"] = np.array(draw(st.lists(st.booleans(), min_size=int(np.prod(mask_shape)),
                                             max_size=int(np.prod(mask_shape)))),
                               dtype=bool).reshape(mask_shape)  # fmt: skip
    if sometimes(draw):
        out["kind"] = np.array(draw(st.sampled_from([*KINDS, "nonsense", ""])))
    if sometimes(draw):
        out["starts"] = x if sometimes(draw, 2) else draw(arrays(max_dims=2))
    return out


KEYS = st.sampled_from(["x", "t", "dt", "mask", "kind", "starts", "y", "X", "x.npy", "[/b]"])
KIND = st.sampled_from([None, *KINDS])


def _check_loaded(path: Path, kind: str | None):
    """Load ``path``: a valid container or a DataError; anything else fails the test."""
    try:
        data = load_data(path, kind=kind)
    except DataError as err:
        assert str(err).strip() and "\n" not in str(err).strip()
        event("refused")
        return None
    event(f"loaded as {data.kind}")
    assert isinstance(data, (Trajectories, Snapshots, Samples, Endpoints))
    assert kind is None or data.kind == kind
    states = data.observed_states()
    assert states.dtype == np.float64 and states.size > 0
    assert np.all(np.isfinite(states)) and np.all(np.abs(states) <= LARGEST_MAGNITUDE)
    if isinstance(data, Trajectories):
        assert np.all(data.time_steps() > 0)
    return data


@FUZZ
@given(st.dictionaries(KEYS, arrays(), max_size=4), KIND)
def test_any_npz_loads_or_says_why(entries, kind):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.npz"
        np.savez(path, **{key: value for key, value in entries.items()})
        _check_loaded(path, kind)


@settings(FUZZ, max_examples=300)
@given(plausible_arrays(), KIND)
def test_nearly_right_npz_loads_or_says_why(entries, kind):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.npz"
        np.savez(path, **entries)
        data = _check_loaded(path, kind)
        stored = str(entries["kind"]) if "kind" in entries else None
        if data is not None and kind is None and stored is not None:
            assert data.kind == stored  # a file's own kind is obeyed, never guessed past


CELL = st.one_of(
    NUMBER.map(repr), st.sampled_from(["", "nan", "inf", "-inf", "1e400", "abc", " 1", "1,5"]),
)  # fmt: skip
HEADER = st.lists(st.sampled_from(["id", "t", "x0", "x1", "x0", "junk", "", "ü"]), max_size=4)


@st.composite
def csv_texts(draw):
    header = ",".join(draw(HEADER))
    width = max(1, header.count(",") + 1)
    rows = draw(st.lists(st.lists(CELL, min_size=width - 1 if draw(st.booleans()) else width,
                                  max_size=width + 1), max_size=6))  # fmt: skip
    return "\n".join([header, *(",".join(r) for r in rows)]) + ("\n" if draw(st.booleans()) else "")


@st.composite
def trajectory_csvs(draw):
    """Well-formed ``id,t,x0`` tables with shuffled rows, ragged lengths and, now and then,
    a repeated time."""
    rows = []
    for i in range(draw(st.integers(1, 3))):
        times = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0]), min_size=1,
                              max_size=5, unique=not sometimes(draw)))  # fmt: skip
        rows += [f"{i},{t},{draw(st.floats(-2, 2))!r}" for t in times]
    return "id,t,x0\n" + "\n".join(draw(st.permutations(rows))) + "\n"


@settings(FUZZ, max_examples=300)
@given(st.one_of(csv_texts(), trajectory_csvs()), KIND)
def test_any_csv_loads_or_says_why(text, kind):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.csv"
        path.write_text(text, encoding="utf-8")
        _check_loaded(path, kind)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([".npz", ".csv", ".h5ad", ".txt", ""]), KIND)
def test_any_bytes_load_or_say_why(raw, suffix, kind):
    """Random bytes (non-UTF-8, truncated zips, nothing at all) under every suffix."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"d{suffix}"
        path.write_bytes(raw)
        _check_loaded(path, kind)


def test_a_folder_a_link_and_a_broken_link_as_input(tmp_path, rng):
    for suffix in (".npz", ".csv", ".h5ad"):
        folder = tmp_path / f"folder{suffix}"
        folder.mkdir()
        with pytest.raises(DataError, match="is a folder, not a data file"):
            load_data(folder)
    np.savez(tmp_path / "real.npz", x=rng.normal(size=(2, 4, 1)), dt=0.1)
    os.symlink(tmp_path / "real.npz", tmp_path / "link.npz")
    assert isinstance(load_data(tmp_path / "link.npz"), Trajectories)  # a link is followed
    os.symlink(tmp_path / "folder.npz", tmp_path / "dirlink.npz")
    with pytest.raises(DataError, match="is a folder"):
        load_data(tmp_path / "dirlink.npz")
    os.symlink(tmp_path / "gone.npz", tmp_path / "broken.npz")
    with pytest.raises(DataError, match="no such file"):
        load_data(tmp_path / "broken.npz")
    (tmp_path / "latin.csv").write_bytes("t,x0\n0,1\n0,2\n1,3\n1,4\n# é\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_data(tmp_path / "latin.csv")


# -- the command line ----------------------------------------------------------------------------


def _ends_cleanly(result, out: Path):
    """A command's result: a fit whose folder is whole, or one error line with status 2."""
    assert "Traceback" not in result.output, result.output
    event(f"exit {result.exit_code}")
    if result.exit_code == 0:
        files = sorted(p.name for p in out.iterdir())
        assert {"model.json", "model.npz", "report.json"} <= set(files), files
        json.loads((out / "report.json").read_text())
        return
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (
        result.exception, result.output,
    )  # fmt: skip
    assert "error:" in result.output
    assert not out.exists() or {"model.json"} <= {p.name for p in out.iterdir()}
    siblings = [p.name for p in out.parent.iterdir() if p.name.endswith((".partial", ".old"))]
    assert siblings == []  # no staged folder left behind


@settings(FUZZ, max_examples=15)
@given(plausible_arrays(min_dim=1), st.sampled_from([None, None, None, *KINDS[:3]]))
def test_fit_command_fits_or_says_why(entries, kind):
    entries.pop("starts", None)
    if "kind" in entries and str(entries["kind"]) == "endpoints":
        entries["kind"] = np.array("samples")  # end-state fits are iterative: too slow here
    with tempfile.TemporaryDirectory() as folder:
        data, out = Path(folder) / "d.npz", Path(folder) / "fit"
        np.savez(data, **entries)
        args = ["fit", str(data), "-e", "poly:2", "-m", "onestep", "--steps", "5", "-o", str(out)]
        result = CliRunner().invoke(app, args + (["--kind", kind] if kind else []))
        _ends_cleanly(result, out)


@settings(FUZZ, max_examples=8)
@given(st.one_of(csv_texts(), trajectory_csvs()))
def test_select_command_selects_or_says_why(text):
    with tempfile.TemporaryDirectory() as folder:
        data, out = Path(folder) / "d.csv", Path(folder) / "sel"
        data.write_text(text)
        result = CliRunner().invoke(app, ["select", str(data), "--families", "poly:2",
                                          "--networks", "", "-o", str(out)])  # fmt: skip
        assert "Traceback" not in result.output, result.output
        if result.exit_code == 0:
            json.loads((out / "select.json").read_text())
        else:
            assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (
                result.exception, result.output,
            )  # fmt: skip
            assert "error:" in result.output
