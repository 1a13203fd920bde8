"""The command line, run for real in a subprocess: simulate → fit → iel.load, and the demo."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import iel


def run_iel(*args, cwd=None, check=True, env=None):
    proc = subprocess.run(
        [sys.executable, "-m", "iel", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env=env,
    )
    if check and proc.returncode != 0:
        command = " ".join(map(str, args))
        raise AssertionError(f"iel {command} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_simulate_fit_load_one_dimensional(tmp_path):
    data = tmp_path / "dw.npz"
    run_iel(
        "simulate", "double_well", "--n", 100, "--steps", 400, "--dt", 0.01,
        "--temperature", 0.5, "--seed", 1, "--out", data,
    )  # fmt: skip
    out = run_iel("fit", data, "--energy", "poly:4").stdout
    assert "formula" in out and "temperature" in out
    folder = tmp_path / "dw.iel"
    report = json.loads((folder / "report.json").read_text())
    for key in ("formula", "temperature", "energy_spec", "n_parameters", "diagnostics"):
        assert key in report
    assert report["temperature"] == pytest.approx(0.5, rel=0.05)
    assert (folder / "landscape.png").stat().st_size > 10_000
    model = iel.load(folder)
    assert model.temperature == report["temperature"]
    grid = np.linspace(-1, 1, 5)[:, None]
    assert model.energy(grid).shape == (5,) and model.grad(grid).shape == (5, 1)
    # the same fit from Python gives the same model
    direct = iel.fit(iel.load_data(data), "poly:4")
    np.testing.assert_allclose(np.asarray(direct.energy(grid)), np.asarray(model.energy(grid)))


def test_simulate_fit_two_dimensional_csv_and_overwrite_guard(tmp_path):
    data = tmp_path / "st.csv"
    run_iel("simulate", "styblinski_tang", "--n", 200, "--steps", 5, "--out", data)
    run_iel("fit", data, "--energy", "poly:4", "--out", tmp_path / "fit")
    report = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert report["temperature"] == 0.0
    assert "0.500·x0^4" in report["formula"] and "− 8.000·x0^2" in report["formula"]
    again = run_iel("fit", data, "--out", tmp_path / "fit", check=False)
    assert again.returncode == 2 and "--force" in again.stdout
    run_iel("fit", data, "--energy", "poly:2", "--out", tmp_path / "fit", "--force")
    assert json.loads((tmp_path / "fit" / "report.json").read_text())["energy_spec"] == "poly:2"


def test_higher_dimensional_fit_writes_slice_plot(tmp_path):
    data = tmp_path / "w.npz"
    run_iel("simulate", "wavy_plateau", "--dim", 4, "--n", 100, "--steps", 3, "--out", data)
    run_iel("fit", data, "--energy", "poly:4+fourier:1:0.3183098861837907")
    assert (tmp_path / "w.iel" / "landscape.png").exists()


def test_cli_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.full((2, 3, 1), np.nan), dt=0.1)
    proc = run_iel("fit", bad, check=False)
    assert proc.returncode == 2 and "expected finite values" in proc.stdout
    proc = run_iel("simulate", "nowhere", "--out", tmp_path / "x.npz", check=False)
    assert proc.returncode == 2 and "unknown system" in proc.stdout
    np.savez(tmp_path / "s.npz", x=np.random.default_rng(0).normal(size=(5, 1)))
    proc = run_iel("fit", tmp_path / "s.npz", "--kind", "endpoints", check=False)
    assert proc.returncode == 2 and "at least 10 end states, got 5" in proc.stdout
    existing = tmp_path / "taken.npz"
    existing.write_bytes(b"keep me")
    proc = run_iel("simulate", "double_well", "--out", existing, "--steps", 2, check=False)
    assert proc.returncode == 2 and existing.read_bytes() == b"keep me"


def _invoke(*args):
    """An ``iel`` command run in this process (fast; the output as a user reads it)."""
    from typer.testing import CliRunner

    from iel.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_extreme_values_end_in_one_error_line(tmp_path, rng):
    walks = np.cumsum(rng.normal(size=(20, 15, 2)), axis=1)
    np.savez(tmp_path / "huge.npz", x=walks * 1e298, dt=0.1)
    for command in ("select", "fit"):  # refused at load: what is too large, where, what to do
        result = _invoke(command, tmp_path / "huge.npz", "--out", tmp_path / command)
        assert result.exit_code == 2 and result.exception.__class__ is SystemExit
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines[0].startswith("error: ") and "rescale the data" in result.output
        assert "Traceback" not in result.output
    # accepted at load, but x⁴ overflows: the normal equations say so before any solve
    np.savez(tmp_path / "big.npz", x=walks * 1e120, dt=0.1)
    result = _invoke("fit", tmp_path / "big.npz", "-e", "poly:4", "--out", tmp_path / "big")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "\nerror: the closed-form fit met non-finite values" in result.output
    assert "rescale" in result.output and not (tmp_path / "big").exists()
    # an arithmetic error that no command catches itself: ε² of --epsilon 1e200 overflows
    np.savez(tmp_path / "walks.npz", x=walks, dt=0.1)
    result = _invoke("select", tmp_path / "walks.npz", "--epsilon", 1e200, "--networks", "",
                     "--families", "poly:2", "--out", tmp_path / "eps")  # fmt: skip
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("error: numerical failure (OverflowError")
    assert "Traceback" not in result.output


def test_systems_listing():
    out = run_iel("systems").stdout
    assert "muller_brown" in out and "styblinski_tang" in out


def test_demo_recovers_both_landscapes(tmp_path):
    proc = run_iel("demo", "--out", tmp_path / "demo")
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    dw = summary["double_well"]
    assert dw["temperature"] == pytest.approx(0.5, rel=0.02)
    assert dw["barrier"] == pytest.approx(1.0, rel=0.1)
    assert dw["force_relmse"] < 2e-3
    mb = summary["muller_brown"]
    assert mb["temperature"] == pytest.approx(1.0, rel=0.02)
    assert mb["force_relmse"] < 0.1
    assert (tmp_path / "demo" / "landscape_double_well.png").exists()
    assert (tmp_path / "demo" / "landscape_muller_brown.png").exists()
    assert "recovered" in proc.stdout


def test_fit_detects_samples_and_reports_e_over_t(tmp_path):
    """Samples of N(0, 0.5²) = exp(−2x²)/Z: score matching with ``ax² + bx`` is solved by the
    sample moments, ``a = 1/(2 var)``, ``b = −2a·mean`` (the Gaussian's stationarity
    conditions), so the saved model's ``E/T`` equals ``(x − m)²/(2v)`` up to a constant, and
    ``a`` is within 4 standard errors (``2·√(2/n)``) of the true 2."""
    rng = np.random.default_rng(2024)
    x = rng.normal(0.0, 0.5, size=(3000, 1))  # exp(−2x²): E/T = 2x²
    path = iel.save_data(tmp_path / "samples.npz", iel.Samples(x))
    run_iel("fit", path, "--energy", "poly:2")
    report = json.loads((tmp_path / "samples.iel" / "report.json").read_text())
    assert report["data_kind"] == "samples" and report["method"] == "score-matching"
    assert report["identifiability"]["energy"].startswith("E/T")
    model = iel.load(tmp_path / "samples.iel")
    grid = np.linspace(-1.5, 1.5, 31)[:, None]
    fitted = np.asarray(model.energy(grid)) - float(model.energy(np.zeros((1, 1)))[0])
    mean, var = float(np.mean(x)), float(np.var(x))
    moments = (grid[:, 0] ** 2 - 2 * mean * grid[:, 0]) / (2 * var)
    np.testing.assert_allclose(fitted, moments, rtol=1e-6, atol=1e-9)
    assert abs(1 / (2 * var) - 2.0) < 4 * 2.0 * np.sqrt(2 / len(x))


def test_end_states_with_and_without_observed_starts(tmp_path):
    ends = tmp_path / "ends.npz"
    run_iel("simulate", "three_well", "--endpoints", "--n", 300, "--steps", 4000, "--dt",
            0.002, "--out", ends)  # fmt: skip
    starts = tmp_path / "ends_starts.npz"
    assert starts.exists()
    again = run_iel("simulate", "three_well", "--endpoints", "--out", ends, check=False)
    assert again.returncode == 2 and "exists" in again.stdout
    out = run_iel(
        "fit", ends, "--kind", "endpoints", "--objective", "likelihood", "--energy", "poly:6"
    ).stdout  # (auto over degrees: tests/test_selection.py)
    assert len(re.findall(r"^ *minima ", out, flags=re.M)) == 3  # a row per minimum
    report = json.loads((tmp_path / "ends.iel" / "report.json").read_text())
    locations = sorted(m["location"][0] for m in report["diagnostics"]["minima"])
    np.testing.assert_allclose(locations, [-2.0, 0.0, 2.0], atol=0.05)
    assert report["data_kind"] == "endpoints"
    assert "increasing transform" in report["identifiability"]["energy"]
    written = np.load(tmp_path / "ends.iel" / "starts.npz")
    assert written["starts"].shape == (300, 1)
    # with the observed starts, every basin catches exactly its own starts
    run_iel("fit", ends, "--kind", "endpoints", "--starts", starts, "--steps", 300, "--energy",
            "poly:6", "--out", tmp_path / "paired")  # fmt: skip
    paired = json.loads((tmp_path / "paired" / "report.json").read_text())["diagnostics"]
    assert paired["prior"] == "observed starts"
    for minimum in paired["minima"]:
        assert minimum["prior_share"] == pytest.approx(minimum["share"], abs=0.05)
    np.testing.assert_array_equal(np.load(tmp_path / "paired" / "starts.npz")["starts"],
                                  np.load(starts)["starts"])  # fmt: skip
    wrong = run_iel("fit", ends, "--starts", tmp_path / "ends.iel" / "report.json", "--out",
                    tmp_path / "bad", check=False)  # fmt: skip
    assert wrong.returncode == 2


def test_observed_starts_files(tmp_path):
    """--starts reads .npz ('starts' or 'z'), .npy and .csv (header row optional), and refuses
    a file without a starts array rather than taking its end states for starts."""
    from iel.cli import _with_starts

    ends = iel.Endpoints(np.array([[1.0], [2.0]]))
    (tmp_path / "a.csv").write_text("x0\n0.5\n-1e-3\n")
    (tmp_path / "b.csv").write_text("0.5\n-1e-3\n")
    np.save(tmp_path / "c.npy", np.array([[0.5], [-1e-3]]))
    np.savez(tmp_path / "d.npz", z=np.array([[0.5], [-1e-3]]))
    for name in ("a.csv", "b.csv", "c.npy", "d.npz"):
        np.testing.assert_allclose(_with_starts(ends, tmp_path / name).starts[:, 0], [0.5, -1e-3])
    np.savez(tmp_path / "ends_only.npz", x=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="expected an array named 'starts'"):
        _with_starts(ends, tmp_path / "ends_only.npz")


def test_commands_keep_compiled_programs_unless_told_not_to(tmp_path):
    """An ``iel`` command writes its compiled programs to ``$IEL_CACHE_DIR`` (for the next
    run to load) and none with ``IEL_COMPILATION_CACHE=0``; ``iel cache`` counts them and
    ``--clear`` deletes them and nothing else; a folder that cannot be created turns the
    cache off with a warning that names it."""
    from iel.compilation_cache import enable_compilation_cache

    args = ("simulate", "double_well", "--n", 20, "--steps", 50, "--out")
    on, off = tmp_path / "on", tmp_path / "off"
    run_iel(*args, tmp_path / "a.npz", env={**os.environ, "IEL_CACHE_DIR": str(on),
                                           "IEL_COMPILATION_CACHE": "1"})  # fmt: skip
    assert len(list(on.iterdir())) > 0
    run_iel(*args, tmp_path / "b.npz", env={**os.environ, "IEL_CACHE_DIR": str(off),
                                           "IEL_COMPILATION_CACHE": "0"})  # fmt: skip
    assert not off.exists()
    wide = {**os.environ, "COLUMNS": "1000"}  # Rich would wrap a long folder name
    listed = run_iel("cache", env={**wide, "IEL_CACHE_DIR": str(on)}).stdout
    programs = sum(f.name.endswith("-cache") for f in on.iterdir())
    assert f"{programs} programs" in listed and str(on) in listed
    (on / "notes.txt").write_text("mine")  # not the cache's: --clear leaves it
    cleared = run_iel("cache", "--clear", env={**wide, "IEL_CACHE_DIR": str(on)}).stdout
    assert f"removed {programs} compiled programs" in cleared
    left = sorted(f.name for f in on.iterdir())
    assert "notes.txt" in left and not [n for n in left if n.endswith(("-cache", "-atime"))]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="cannot use .*a-file"):
        assert enable_compilation_cache(blocker / "cache") is None
