"""Benchmark tables for the documentation site, written by the scripts that measure them.

A script run with ``--docs`` calls :func:`write_markdown_table` for each headline table; the
table lands in ``docs/benchmarks/generated/<name>.md``, which ``docs/benchmarks.md`` includes
(``pymdownx.snippets``).  Each file states the command that produced it and the date, so no
figure in the documentation is copied by hand.  No commit hash is written: rerun the command to
check a figure.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

GENERATED = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "generated"


def docs_flag(argv: Sequence[str] | None = None) -> bool:
    """Whether ``--docs`` is among the arguments (for scripts without an argument parser)."""
    return "--docs" in (sys.argv if argv is None else argv)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a reader would type it: ``python benchmarks/<script> <args> --docs``."""
    argv = [a for a in (sys.argv if argv is None else argv) if a != "--docs"]
    script = f"benchmarks/{Path(argv[0]).name}" if argv else "benchmarks/?"
    return shlex.join(["python", script, *argv[1:], "--docs"])


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-style Markdown table; cells are written with ``str`` (format numbers first)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
        if len(cells) != len(header):
            raise ValueError(f"row {cells} has {len(cells)} cells, the header {len(header)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown_table(
    name: str,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    command: str | None = None,
    notes: str = "",
    out_dir: Path | None = None,
) -> Path:
    """Write ``<out_dir or docs/benchmarks/generated>/<name>.md``: a bold title, the table, the
    notes, and a line with the command, the date and the machine it ran on."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"table name {name!r}: letters, digits, '_', '-' and '.' only")
    folder = GENERATED if out_dir is None else Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    today = datetime.date.today().isoformat()
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"
    text = [f"**{title}**", "", markdown_table(header, rows), ""]
    if notes:
        text += [notes.strip(), ""]
    text.append(f"*Written by `{command or command_line()}` on {today} ({machine}).*")
    path = folder / f"{name}.md"
    path.write_text("\n".join(text) + "\n")
    print(f"docs table written: {path}")
    return path
