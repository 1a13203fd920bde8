"""Shared plumbing of the gallery examples: ``--out``/``--quick``, figures and the page.

Each example's module docstring is its page: the first line is the title, the rest states the
question and the answer.  The example adds figures and the numbers its run measured; the page
``<out>/<name>.md`` is written from them, so no number on it is copied by hand.
"""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "gallery"
DPI = 80


class Page:
    """One gallery page: ``figure(fig, stem)``, ``number(label, value)``, ``write()``."""

    def __init__(self, name: str, doc: str, argv=None):
        parser = argparse.ArgumentParser(description=doc.splitlines()[0])
        parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="page and figures")
        parser.add_argument("--quick", action="store_true", help="small sizes (for the tests)")
        args = parser.parse_args(argv)
        self.name, self.doc, self.out, self.quick = (
            name,
            inspect.cleandoc(doc),
            args.out,
            args.quick,
        )
        self.out.mkdir(parents=True, exist_ok=True)
        self.figures: list[str] = []
        self.numbers: list[tuple[str, str]] = []
        self.start = time.perf_counter()

    def pick(self, quick, full):
        """``quick`` in quick mode, else ``full``."""
        return quick if self.quick else full

    def figure(self, fig, stem: str = "") -> Path:
        """Save ``fig`` as ``<name>[_stem].png`` beside the page and close it."""
        path = self.out / f"{self.name}{'_' + stem if stem else ''}.png"
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(path.name)
        return path

    def number(self, label: str, value) -> None:
        """Record (and print) one measured number."""
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        self.numbers.append((label, text))
        print(f"{label}: {text}")

    def write(self) -> Path:
        title, _, body = self.doc.partition("\n")
        lines = [f"# {title.rstrip('.')}", "", body.strip(), ""]
        lines += [f"![{self.name}]({f})" for f in self.figures]
        lines += ["", "## Measured by this run", "", "| quantity | value |", "|---|---|"]
        cell = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
        lines += [f"| {cell(label)} | {cell(text)} |" for label, text in self.numbers]
        run = f"python examples/{self.name}.py" + (" --quick` (small sizes)" if self.quick else "`")
        lines += ["", f"Made by `{run}; every number above is written by that run.", ""]
        print(f"{self.name}: {time.perf_counter() - self.start:.1f} s after imports")
        path = self.out / f"{self.name}.md"
        path.write_text("\n".join(lines))
        return path
