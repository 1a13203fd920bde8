"""Data containers and files: every bad input gets one clear error; round trips are exact."""

import numpy as np
import pytest

from iel.data import (
    DataError,
    Endpoints,
    Samples,
    Snapshots,
    Trajectories,
    load_data,
    save_data,
)


def _traj(rng, n=3, t=5, d=2):
    return rng.normal(size=(n, t, d))


# -- trajectories ----------------------------------------------------------------------------
def test_trajectories_times_from_dt_vector_and_matrix(rng):
    x = _traj(rng)
    a = Trajectories(x, dt=0.1)
    np.testing.assert_allclose(a.t[2], np.arange(5) * 0.1)
    b = Trajectories(x, t=np.arange(5) * 0.1)
    np.testing.assert_allclose(a.t, b.t)
    irregular = np.cumsum(rng.uniform(0.1, 0.3, size=(3, 5)), axis=1)
    c = Trajectories(x, t=irregular)
    x0, x1, h = c.transitions()
    assert x0.shape == (12, 2) and h.shape == (12,)
    np.testing.assert_allclose(h, np.diff(irregular, axis=1).reshape(-1))


def test_trajectories_mask_joins_across_gaps(rng):
    x = _traj(rng, n=2, t=4, d=1)
    x[0, 1] = np.nan  # missing, masked out
    mask = np.ones((2, 4), dtype=bool)
    mask[0, 1] = False
    mask[1, 3] = False  # ragged end
    traj = Trajectories(x, dt=0.5, mask=mask)
    x0, x1, h = traj.transitions()
    # trajectory 0: 0→2, 2→3; trajectory 1: 0→1, 1→2
    np.testing.assert_allclose(h, [1.0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(x0[0], x[0, 0])
    np.testing.assert_allclose(x1[0], x[0, 2])
    assert traj.observed_states().shape == (6, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x": np.zeros((5, 2)), "dt": 0.1}, r"expected shape \(N, T, d\), got shape \(5, 2\)"),
        ({"x": np.zeros((3, 1, 2)), "dt": 0.1}, "at least two time points"),
        ({"x": np.zeros((0, 4, 2)), "dt": 0.1}, "non-empty"),
        ({"x": np.full((2, 3, 1), np.nan), "dt": 0.1}, "NaN at index"),
        ({"x": np.full((2, 3, 1), np.inf), "dt": 0.1}, "inf at index"),
        ({"x": np.zeros((2, 3, 1)), "dt": -1.0}, "positive finite"),
        ({"x": np.zeros((2, 3, 1)), "dt": np.nan}, "positive finite"),
        ({"x": np.zeros((2, 3, 1))}, "exactly one of dt"),
        ({"x": np.zeros((2, 3, 1)), "dt": 0.1, "t": [0, 1, 2]}, "exactly one of dt"),
        ({"x": np.zeros((2, 3, 1)), "t": [0.0, 1.0, 1.0]}, "strictly increasing times"),
        ({"x": np.zeros((2, 3, 1)), "t": [0.0, 2.0, 1.0]}, "t\\[1\\] = 2 followed by 1"),
        ({"x": np.zeros((2, 3, 1)), "t": [0.0, 1.0]}, r"t: expected shape \(T,\) = \(3,\)"),
        ({"x": np.zeros((2, 3, 1)), "dt": 0.1, "mask": np.ones((3, 2), bool)}, "mask: expected"),
        ({"x": np.zeros((2, 3, 1)), "dt": 0.1, "mask": np.ones((2, 3))}, "boolean"),
        (
            {"x": np.zeros((2, 3, 1)), "dt": 0.1, "mask": np.eye(2, 3, dtype=bool)},
            "no trajectory has two consecutive",
        ),
        ({"x": np.array([[["a"]]]), "dt": 0.1}, "expected real numbers"),
    ],
)
def test_trajectories_bad_input(kwargs, message):
    with pytest.raises(DataError, match=message):
        Trajectories(**kwargs)


def test_nan_allowed_where_masked(rng):
    x = _traj(rng, n=1, t=3, d=1)
    x[0, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        Trajectories(x, dt=1.0)
    Trajectories(x, dt=1.0, mask=np.array([[True, True, False]]))


def test_values_whose_squares_overflow_are_refused_with_a_rescaling_hint(rng):
    x = _traj(rng, n=2, t=4, d=2)
    x[1, 2, 0] = -3e200
    with pytest.raises(DataError, match=r"at most 1e\+150.*-3e\+200 at index \(1, 2, 0\)") as err:
        Trajectories(x, dt=0.1)
    assert "divide by 1e+200" in str(err.value)
    edge = _traj(rng, n=2, t=4, d=2) * 1e149  # squares still fit: accepted
    assert np.isfinite(np.sum(Trajectories(edge, dt=0.1).x ** 2))
    masked = x.copy()
    Trajectories(masked, dt=0.1, mask=np.array([[True] * 4, [True, True, False, True]]))
    with pytest.raises(DataError, match="snapshots x: expected values of magnitude"):
        Snapshots(np.full((4, 1), 1e300), [0, 0, 1, 1])
    with pytest.raises(DataError, match="samples x: expected values of magnitude"):
        Samples(np.full((4, 1), -1e151))
    with pytest.raises(DataError, match="t: expected values of magnitude"):
        Trajectories(np.zeros((1, 3, 1)), t=[0.0, 1.0, 1e200])
    with pytest.raises(DataError, match="the last time: expected values of magnitude"):
        Trajectories(np.zeros((1, 3, 1)), dt=1e300)
    with pytest.raises(DataError, match="snapshots t: expected values of magnitude"):
        Snapshots(np.zeros((4, 1)), [0, 0, 1e160, 1e160])


# -- populations -----------------------------------------------------------------------------
def test_snapshots_and_errors(rng):
    x = rng.normal(size=(6, 2))
    snap = Snapshots(x, [0, 0, 0, 1, 1, 1])
    assert [p.shape for p in snap.populations()] == [(3, 2), (3, 2)]
    with pytest.raises(DataError, match="at least two distinct times"):
        Snapshots(x, np.zeros(6))
    with pytest.raises(DataError, match="one time per row"):
        Snapshots(x, np.zeros(5))
    with pytest.raises(DataError, match="t = 1 has 1"):
        Snapshots(x, [0, 0, 0, 0, 0, 1])
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match="NaN at index \\(2, 1\\)"):
        Snapshots(bad, [0, 0, 0, 1, 1, 1])
    with pytest.raises(DataError, match="snapshots t: expected finite"):
        Snapshots(x, [0, 0, np.nan, 1, 1, 1])


def test_samples_and_endpoints_errors(rng):
    with pytest.raises(DataError, match="at least 2 states"):
        Samples(np.zeros((1, 2)))
    with pytest.raises(DataError, match=r"expected shape \(M, d\)"):
        Samples(np.zeros((4, 2, 2)))
    with pytest.raises(DataError, match="one start per end state"):
        Endpoints(np.zeros((4, 2)), starts=np.zeros((3, 2)))
    Endpoints(rng.normal(size=(4, 2)), starts=rng.normal(size=(4, 2)))


# -- files -----------------------------------------------------------------------------------
def test_npz_round_trips(tmp_path, rng):
    mask = np.ones((3, 5), dtype=bool)
    mask[1, 4] = False
    cases = [
        Trajectories(_traj(rng), dt=0.1),
        Trajectories(_traj(rng), t=np.cumsum(rng.uniform(0.1, 1, (3, 5)), axis=1), mask=mask),
        Snapshots(rng.normal(size=(6, 2)), [0, 0, 0, 1, 1, 1]),
        Samples(rng.normal(size=(7, 3))),
        Endpoints(rng.normal(size=(4, 2)), starts=rng.normal(size=(4, 2))),
    ]
    for i, data in enumerate(cases):
        path = save_data(tmp_path / f"d{i}.npz", data)
        back = load_data(path)
        assert type(back) is type(data)
        np.testing.assert_array_equal(np.nan_to_num(back.x), np.nan_to_num(data.x))
        if isinstance(data, (Trajectories, Snapshots)):
            np.testing.assert_array_equal(back.t, data.t)


def test_npz_kind_detection_and_forcing(tmp_path, rng):
    np.savez(tmp_path / "traj.npz", x=_traj(rng), dt=0.5)
    np.savez(tmp_path / "snap.npz", x=rng.normal(size=(6, 2)), t=[0, 0, 0, 1, 1, 1])
    np.savez(tmp_path / "samp.npz", x=rng.normal(size=(6, 2)))
    assert isinstance(load_data(tmp_path / "traj.npz"), Trajectories)
    assert isinstance(load_data(tmp_path / "snap.npz"), Snapshots)
    assert isinstance(load_data(tmp_path / "samp.npz"), Samples)
    assert isinstance(load_data(tmp_path / "samp.npz", kind="endpoints"), Endpoints)
    with pytest.raises(DataError, match="kind: expected one of"):
        load_data(tmp_path / "samp.npz", kind="movies")


def test_csv_round_trip_and_ragged(tmp_path, rng):
    traj = Trajectories(_traj(rng), dt=0.25)
    path = save_data(tmp_path / "t.csv", traj)
    back = load_data(path)
    np.testing.assert_allclose(back.x, traj.x, rtol=0, atol=0)
    np.testing.assert_allclose(back.t, traj.t)
    # ragged: ids with different lengths, rows out of order
    (tmp_path / "r.csv").write_text("id,t,x0\n1,0.0,1\n0,0.1,5\n1,0.2,2\n0,0.0,4\n0,0.3,6\n")
    ragged = load_data(tmp_path / "r.csv")
    assert ragged.x.shape == (2, 3, 1)
    np.testing.assert_array_equal(ragged.observed, [[True, True, True], [True, True, False]])
    np.testing.assert_allclose(ragged.x[0, :, 0], [4, 5, 6])
    (tmp_path / "s.csv").write_text("t,x0,x1\n0,1,2\n0,3,4\n1,5,6\n1,7,8\n")
    assert isinstance(load_data(tmp_path / "s.csv"), Snapshots)
    (tmp_path / "m.csv").write_text("x0,x1\n0,1\n2,3\n")
    assert isinstance(load_data(tmp_path / "m.csv"), Samples)


def test_file_errors(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DataError, match="the file is empty"):
        load_data(tmp_path / "empty.npz")
    with pytest.raises(DataError, match="no such file"):
        load_data(tmp_path / "missing.npz")
    np.savez(tmp_path / "nox.npz", y=np.zeros(3))
    with pytest.raises(DataError, match="expected an array named 'x', found \\['y'\\]"):
        load_data(tmp_path / "nox.npz")
    np.savez(tmp_path / "nodt.npz", x=np.zeros((2, 3, 1)))
    with pytest.raises(DataError, match="trajectories need 'dt'"):
        load_data(tmp_path / "nodt.npz")
    np.savez(tmp_path / "badrank.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="has shape \\(3,\\)"):
        load_data(tmp_path / "badrank.npz")
    np.savez(tmp_path / "nan.npz", x=np.full((2, 3, 1), np.nan), dt=1.0)
    with pytest.raises(DataError, match="nan.npz: trajectories x: expected finite"):
        load_data(tmp_path / "nan.npz")
    np.savez(tmp_path / "single.npz", x=np.zeros((4, 2)), t=np.zeros(4))
    with pytest.raises(DataError, match="a single snapshot is equilibrium samples"):
        load_data(tmp_path / "single.npz")
    (tmp_path / "header.csv").write_text("id,t,x0\n")
    with pytest.raises(DataError, match="header but no rows"):
        load_data(tmp_path / "header.csv")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        load_data(tmp_path / "blank.csv")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(DataError, match="expected a .npz, .csv or .h5ad"):
        load_data(tmp_path / "x.txt")
    (tmp_path / "notnpz.npz").write_text("hello")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_data(tmp_path / "notnpz.npz")


def test_files_the_fuzzing_found_or_that_read_as_something_else(tmp_path, rng):
    """Each was a traceback or a silent misreading before: non-UTF-8 CSV, an unreadable
    .h5ad, a stored kind that names no kind (read as end states), a repeated column name (the
    last copy silently won), a row without an id (dropped)."""
    (tmp_path / "latin.csv").write_bytes("t,x0\n0,1\n0,2\n1,3\n1,4\n# é\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text .byte 23 is 0xe9"):
        load_data(tmp_path / "latin.csv")
    (tmp_path / "bom.csv").write_text("\ufeffx0,x1\n0,1\n2,3\n", encoding="utf-8")
    assert load_data(tmp_path / "bom.csv").x.shape == (2, 2)  # a byte-order mark is fine
    (tmp_path / "junk.h5ad").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match="junk.h5ad: not a readable .h5ad file"):
        load_data(tmp_path / "junk.h5ad")
    np.savez(tmp_path / "k.npz", x=rng.normal(size=(12, 2)), kind=np.array("nonsense"))
    with pytest.raises(DataError, match="'kind' should name one of .*got 'nonsense'"):
        load_data(tmp_path / "k.npz")
    assert isinstance(load_data(tmp_path / "k.npz", kind="samples"), Samples)  # told: obeyed
    (tmp_path / "dup.csv").write_text("t,x0,x0\n0,1,2\n0,3,4\n1,5,6\n1,7,8\n")
    with pytest.raises(DataError, match="names 'x0' more than once"):
        load_data(tmp_path / "dup.csv")
    (tmp_path / "noid.csv").write_text("id,t,x0\n0,0,1\n0,1,2\nnan,0,3\nnan,1,4\n")
    with pytest.raises(DataError, match="finite 'id', row 3 has nan"):
        load_data(tmp_path / "noid.csv")


def test_save_refuses_to_overwrite(tmp_path, rng):
    data = Samples(rng.normal(size=(4, 2)))
    save_data(tmp_path / "a.npz", data)
    with pytest.raises(FileExistsError):
        save_data(tmp_path / "a.npz", data)


def test_h5ad_without_anndata_says_so(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "anndata":
            raise ImportError("no anndata")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    (tmp_path / "cells.h5ad").write_bytes(b"x")
    with pytest.raises(ImportError, match="pip install 'iel\\[anndata\\]'"):
        load_data(tmp_path / "cells.h5ad")


def test_distinct_drops_exact_copies_and_keeps_the_rest_in_order():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3, 2))
    copies = np.stack([x[0], x[1], x[0], x[2], x[1], x[3]])  # two copies among six
    distinct, removed = Trajectories(copies, dt=0.1).distinct()
    assert removed == 2
    np.testing.assert_array_equal(distinct.x, x)
    nearly = copies.copy()
    nearly[2, 1, 0] = np.nextafter(nearly[2, 1, 0], np.inf)  # one ulp off: not a copy
    assert Trajectories(nearly, dt=0.1).distinct()[1] == 1
    mask = np.ones((6, 3), dtype=bool)
    mask[2, 2] = False  # same states, another mask: not a copy
    assert Trajectories(copies, dt=0.1, mask=mask).distinct()[1] == 1
