"""What a fit measured about itself: a read-only record every estimator fills.

The entries every estimator may report are typed fields; what only one estimator measures
(the pairing of snapshots, the minima of end states, …) goes in :attr:`Diagnostics.details`.
The record reads like a mapping (``diagnostics["noise_free"]``, ``"notes" in diagnostics``,
``diagnostics.items()``), holding the entries that were set, so reports and the command line
render it without knowing the estimator.  It is never changed in place: :meth:`updated` and
:meth:`noted` return a new record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class FrozenMapping(Mapping[str, Any]):
    """A read-only mapping (a copy of what it was given) that copies and pickles like a dict."""

    def __init__(self, entries: Mapping[str, Any] | None = None):
        self._entries = dict(entries or {})

    def __getitem__(self, key: str) -> Any:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return repr(self._entries)


@dataclass(frozen=True)
class Diagnostics(Mapping[str, Any]):
    """Fit quality, the choices a fit made and why, and notes for the user.

    Attributes:
        noise_free: the steps are explained to the data precision (``T`` reported as 0).
        n_transitions: the one-step transitions (or pairs) fitted.
        residual_scale: root-mean-square one-step residual per coordinate.
        method_reason: why the estimator was chosen (the ``auto`` rules).
        estimated_temperature: ``T̂`` from the data when the temperature was fixed by the caller.
        temperature_fixed: the caller fixed the temperature.
        gradient_system: the verdict of "is this a gradient system?" (selection), else ``None``.
        gradient_system_note: why that verdict was not made, or what it rests on.
        constant_temperature: the verdict of "is one temperature enough?" (trajectories: the
            steps' noise against a state-dependent ``D(x)``; ``False``: rejected), else ``None``.
        dynamics: the verdict of noise-free descent against Langevin (selection).
        code_length_bits: the two-part code length of the data with the fitted energy.
        null_code_bits: the code length with ``E ≡ const``.
        code_length: the parts of the selected code (selection).
        notes: plain-language notes for the user.
        details: what only some estimators measure, by name.
        reported: the typed fields this fit reported (the notes always; a field set to
            ``None`` is reported as ``None``: "not tested" is a result).
    """

    noise_free: bool | None = None
    n_transitions: int | None = None
    residual_scale: float | None = None
    method_reason: str | None = None
    estimated_temperature: float | None = None
    temperature_fixed: bool | None = None
    gradient_system: bool | None = None
    gradient_system_note: str | None = None
    constant_temperature: bool | None = None
    dynamics: str | None = None
    code_length_bits: float | None = None
    null_code_bits: float | None = None
    code_length: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    reported: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self):
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "details", FrozenMapping(self.details))
        # a field counts as reported when set, even to None ("not tested" is a result)
        given = {name for name in _FIELDS if getattr(self, name) is not None}
        object.__setattr__(self, "reported", frozenset(self.reported) | given | {"notes"})

    @classmethod
    def of(cls, entries: Mapping[str, Any] | Diagnostics | None = None) -> Diagnostics:
        """A record from a mapping of entries (typed fields by name, the rest as details)."""
        if isinstance(entries, Diagnostics):
            return entries
        return cls().updated(**dict(entries or {}))

    def updated(self, **entries: Any) -> Diagnostics:
        """A copy with ``entries`` set (typed fields by name, any other name as a detail)."""
        typed = {k: v for k, v in entries.items() if k in _FIELDS}
        extra = {k: v for k, v in entries.items() if k not in _FIELDS}
        if "notes" in typed:
            typed["notes"] = tuple(typed["notes"])
        return dataclasses.replace(
            self, **typed, details={**self.details, **extra}, reported=self.reported | set(typed)
        )

    def noted(self, *notes: str) -> Diagnostics:
        """A copy with ``notes`` added after the existing ones."""
        return dataclasses.replace(self, notes=self.notes + tuple(notes))

    def as_dict(self) -> dict[str, Any]:
        """The entries that were set (and the notes), typed fields first (what
        ``report.json`` holds)."""
        return dict(self.items())

    # -- the read-only mapping -----------------------------------------------------------
    def _reported(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _FIELDS if name in self.reported}
        out.update(self.details)
        return out

    def __getitem__(self, key: str) -> Any:
        entries = self._reported()
        if key not in entries:
            raise KeyError(f"{key!r}: this fit did not report it (reported: {sorted(entries)})")
        return entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._reported())

    def __len__(self) -> int:
        return len(self._reported())


_FIELDS = tuple(
    f.name for f in dataclasses.fields(Diagnostics) if f.name not in ("details", "reported")
)
