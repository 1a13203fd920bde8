"""The gallery's examples are executed by the tests, so they cannot rot.

Each example answers one question of the research note, checks its own claim with assertions
and writes a page (markdown + PNG).  Here each runs as a real subprocess in quick mode (small
sizes, ≤ 15 s on one core including JAX compilation); the full-size runs that write
``docs/gallery/`` are marked slow.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import iel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GALLERY = (
    "operators_gd_langevin_multiplicative",
    "distribution_vs_energy",
    "one_step_vs_rollout",
    "linear_vs_network_training",
    "composing_energies",
    "agent_to_goal",
    "end_states_and_starts",
    "three_operators_simplex",
)


def _run(name: str, out: Path, *flags: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    package_root = str(Path(iel.__file__).resolve().parents[1])  # the iel under test
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.setdefault("IEL_COMPILATION_CACHE", "0")
    command = [sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(out), *flags]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def _check_page(name: str, out: Path) -> str:
    page = (out / f"{name}.md").read_text()
    figures = sorted(out.glob(f"{name}*.png"))
    assert figures, f"{name} wrote no figure"
    for figure in figures:
        assert f"]({figure.name})" in page, f"{figure.name} is not on the page"
        assert figure.stat().st_size < 150_000, f"{figure.name} is too large"
    assert page.startswith("# ") and "**Answer**" in page
    assert "## Measured by this run" in page and "| quantity | value |" in page
    return page


@pytest.mark.parametrize("name", GALLERY)
def test_gallery_example_quick(name, tmp_path):
    result = _run(name, tmp_path, "--quick")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    page = _check_page(name, tmp_path)
    assert "--quick` (small sizes)" in page


def test_gallery_index_lists_every_example():
    index = (ROOT / "docs" / "gallery" / "index.md").read_text()
    for name in GALLERY:
        assert f"({name}.md)" in index, f"{name} is missing from docs/gallery/index.md"


@pytest.mark.slow
@pytest.mark.parametrize("name", GALLERY)
def test_gallery_example_full_size(name, tmp_path):
    """The full-size run, as it writes the committed pages (minutes in all)."""
    result = _run(name, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    _check_page(name, tmp_path)
