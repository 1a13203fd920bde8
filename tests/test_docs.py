"""The documentation site builds without a warning, so its links, its API reference and its
generated pages cannot rot; and the pieces it shares with the README and the benchmarks agree."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_mkdocs_build_is_strict_clean(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason='the docs need pip install ".[docs]" (or ".[test]")')
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    specs = (tmp_path / "site" / "energy-specs" / "index.html").read_text()
    assert "poly:K:V" in specs and "MLPEnergy" in specs  # the generated grammar is on the page


def test_quickstart_example_is_the_readme_example():
    """tests/test_readme.py runs the README's example; the quick start shows the same code."""
    assert _python_blocks(DOCS / "quickstart.md") == _python_blocks(ROOT / "README.md")


def test_every_generated_table_the_benchmarks_page_includes_exists():
    page = (DOCS / "benchmarks.md").read_text()
    included = re.findall(r'--8<-- "([^"]+)"', page)
    assert included
    assert [p for p in included if not (ROOT / p).is_file()] == []


def test_benchmark_tables_carry_their_command_and_no_commit_hash(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from _tables import command_line, write_markdown_table
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    command = command_line(["benchmarks/demo.py", "--n", "10", "--docs"])
    assert command == "python benchmarks/demo.py --n 10 --docs"
    path = write_markdown_table(
        "demo", "A demo", ["a", "b"], [(1, "x|y")], command=command, out_dir=tmp_path
    )
    text = path.read_text()
    assert "| 1 | x\\|y |" in text and f"`{command}`" in text
    assert not re.search(r"\b[0-9a-f]{7,40}\b", text)  # no commit hash
    with pytest.raises(ValueError, match="cells"):
        write_markdown_table("bad", "t", ["a", "b"], [(1,)], out_dir=tmp_path)
