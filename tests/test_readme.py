"""The README's Python example and its quick-start commands are kept true by running them."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (code,) = _blocks("python")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    model = namespace["model"]
    assert abs(model.temperature - 0.5) < 0.02
    assert namespace["simplest"].formula == "E(x) = −2.000·x0^2 + 1.000·x0^4"  # as printed
    # the exact formula is not second-guessed by a scanned Fourier fit of the noise: the
    # exponentiated quadratics are not searched (they cost 60 s of this example before)
    assert any("not fitted: expquad" in n for n in namespace["simplest"].diagnostics.notes)
    assert (tmp_path / "dw.iel" / "model.json").exists()
    assert namespace["paths"].x.shape == (10, 101, 1)  # model.simulate: 100 steps of 10 states


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    first, second = _blocks("bash")[:2]
    assert first.strip() == "pip install . && iel demo"
    ci = (README.parent / ".ci" / "run").read_text()
    assert second.strip() in ci
