"""MkDocs hook: the energy-spec grammar page is generated from ``iel.energies.spec``.

``docs/energy-specs.md`` holds the marker ``<!-- iel:spec-grammar -->``; this hook replaces it
with

* the module docstring of :mod:`iel.energies.spec` (its grammar table, read by
  ``iel.energies.spec.grammar()``, turned into Markdown), and
* for every term of that table, an example spec parsed by ``parse_energy_spec`` and the
  docstring of the family class the parser builds for it.

The examples are parsed at build time, so a grammar table that names a term the parser does not
accept fails the (strict) build instead of drifting.  Only ``iel.energies.spec`` is imported;
the family classes are found through what the parser returns, not by their module paths.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

MARKER = "<!-- iel:spec-grammar -->"
PAGE = "energy-specs.md"


def on_config(config):
    """Import the package from this checkout's ``src`` (not an installed copy elsewhere)."""
    src = str(Path(config["config_file_path"]).resolve().parent / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return config


def rst_to_markdown(text: str) -> str:
    """The few reStructuredText constructs the docstrings use, as Markdown."""
    text = re.sub(r":(?:class|func|meth|mod|attr|data|obj):`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _family_class(spec_module, example: str):
    import jax
    import numpy as np

    family = spec_module.parse_energy_spec(example, 2)
    if family.library is not None:
        return type(family.library)
    states = np.random.default_rng(0).normal(size=(16, 2))
    return type(family.build(jax.random.PRNGKey(0), states))


def _sections_to_lists(doc: str) -> str:
    """Google-style ``Args:`` blocks as Markdown lists (their indented lines would otherwise run
    together into one paragraph)."""
    out: list[str] = []
    in_section = False
    for line in doc.splitlines():
        if re.fullmatch(r"(Args|Arguments|Parameters|Returns|Raises|Attributes):", line):
            out += ["", f"**{line[:-1]}**", ""]
            in_section = True
        elif in_section and re.match(r" {4}\S", line):
            name, sep, text = line.strip().partition(": ")
            out.append(f"- `{name}`: {text}" if sep else f"- {line.strip()}")
        elif in_section and line.startswith(" " * 8):
            out[-1] += " " + line.strip()
        else:
            in_section = False
            out.append(line)
    return "\n".join(out)


def _docstring(cls) -> str:
    doc = inspect.getdoc(cls) or ""
    if not doc or doc.startswith(f"{cls.__name__}("):  # a dataclass's generated signature
        return "*(no docstring)*"
    return rst_to_markdown(_sections_to_lists(doc))


def render_grammar() -> str:
    try:
        import iel.energies.spec as spec_module
    except ImportError as err:
        raise PluginError(
            f"docs/hooks/spec_grammar.py: cannot import iel.energies.spec ({err}); the energy-"
            "spec page is generated from it"
        ) from err
    for name in ("parse_energy_spec", "SpecError", "grammar", "example_spec"):
        if not hasattr(spec_module, name):
            raise PluginError(
                f"docs/hooks/spec_grammar.py: iel.energies.spec has no {name!r}; the energy-spec "
                "page parses every term of the grammar table with it"
            )
    try:
        table = spec_module.grammar()
    except spec_module.SpecError as err:
        raise PluginError(f"docs/hooks/spec_grammar.py: {err}") from err
    before, rows, after = table.before, table.rows, table.after
    out = [rst_to_markdown(before), "", "| term | meaning | example | family class |",
           "|---|---|---|---|"]  # fmt: skip
    classes: dict[str, tuple[type, list[str]]] = {}
    for term, meaning in rows:
        example = spec_module.example_spec(term)
        try:
            cls = _family_class(spec_module, example)
        except spec_module.SpecError as err:
            raise PluginError(
                f"docs/hooks/spec_grammar.py: the grammar table's term {term} (example "
                f"{example!r}) is rejected by parse_energy_spec: {err}"
            ) from err
        classes.setdefault(cls.__name__, (cls, []))[1].append(example)
        out.append(f"| {rst_to_markdown(term)} | {rst_to_markdown(meaning)} | `{example}` | "
                   f"[`{cls.__name__}`](#{cls.__name__.lower()}) |")  # fmt: skip
    out += ["", rst_to_markdown(after), "", "## The families", ""]
    for name, (cls, examples) in classes.items():
        used = ", ".join(f"`{e}`" for e in examples)
        out += [f"### {name}", "", f"`{cls.__module__}.{name}`, built for {used}.", "",
                _docstring(cls), ""]  # fmt: skip
    return "\n".join(out)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"docs/{PAGE} lost its marker {MARKER}; the grammar goes there")
    return markdown.replace(MARKER, render_grammar())
