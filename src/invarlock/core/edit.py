"""The edit contract: what the runner calls on an edit, and what an edit reports.

Torch-free: ``invarlock plugins edits`` imports this module to list the built-in edits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from invarlock.core.errors import ConfigError
from invarlock.core.jsonsafe import json_safe

__all__ = [
    "Edit",
    "EditConfigError",
    "EditResult",
    "EditSummary",
    "ExportableEdit",
    "LayerStats",
    "export_form",
]


class EditConfigError(ConfigError, ValueError):
    """An edit's parameters are wrong; the message names the key path (``edit.bits: ...``)."""


class Edit(Protocol):
    """A built-in weight edit (``quant_rtn`` or ``noop``), driven by the runner.

    The runner parses the YAML block once, snapshots :meth:`targets`, then calls :meth:`apply`.
    An edit whose result can be written as integer codes also has ``export``
    (:class:`ExportableEdit`); the runner and the exporters never ask for an edit by name.
    """

    name: str

    def parse(self, params: Mapping[str, Any] | None) -> Any:
        """Validate ``params`` into a frozen config object.

        Raises :class:`EditConfigError` naming ``edit.<key>``; unknown keys are errors that list
        the accepted keys.
        """
        ...

    def targets(self, model: Any, config: Any) -> list[str]:
        """Names (as ``model.named_parameters()`` yields them) of every tensor :meth:`apply`
        writes; the runner snapshots exactly these."""
        ...

    def apply(self, model: Any, config: Any) -> EditResult:
        """Edit ``model`` in place and report what changed."""
        ...


@runtime_checkable
class ExportableEdit(Edit, Protocol):
    """An :class:`Edit` that can also hand its result to the formats storing integer codes.

    ``export`` is optional: an edit without it is written only by formats that store the
    edited weights as they are (``hf``); the others refuse it before anything is loaded.
    """

    def export(self, config: Any, result: EditResult | None = None) -> Any:
        """The edit's integer form for the exporters (:mod:`invarlock.exporters`).

        ``result`` is what :meth:`apply` returned on the model being exported (its ``codes``
        make the codes exact); ``None`` before the edit ran (plan-time format checks).
        """
        ...


def export_form(edit: Edit, config: Any, result: EditResult | None = None) -> Any:
    """``edit.export(config, result)``, or ``None`` when the edit has no ``export``."""
    return edit.export(config, result) if isinstance(edit, ExportableEdit) else None


@dataclass(frozen=True)
class LayerStats:
    """What the edit did to one weight tensor.

    ``rel_error`` is ``||W' - W||_F / ||W||_F`` and ``max_error`` is ``max |W' - W|``; both are
    ``None`` unless the edit ran with ``stats: true``.
    """

    name: str  # module name, e.g. "transformer.h.0.attn.c_attn"
    param: str  # the weight's parameter name, e.g. "transformer.h.0.attn.c_attn.weight"
    module_type: str  # "Linear" or "Conv1D"
    shape: list[int]
    numel: int
    dtype: str
    bits: int
    scheme: str  # e.g. "sym/channel", "asym/group128"
    out_axis: int  # the output-channel axis of the stored weight (Conv1D: 1)
    scale_min: float
    scale_max: float
    rel_error: float | None
    max_error: float | None
    tied_to: list[str] = field(default_factory=list)  # other parameter names sharing the tensor
    duration_ms: float = 0.0


@dataclass
class EditResult:
    """The outcome of :meth:`Edit.apply`; :meth:`to_dict` is what ``report.json`` records.

    Attributes:
        name: the edit's name (``quant_rtn`` or ``noop``).
        params: the edit's parsed parameters (``bits``, ``group_size``, ...).
        layers: one :class:`LayerStats` per weight tensor written.
        tied: groups of parameter names sharing one tensor, which was edited once.
        skipped: ``"<module>: <reason>"`` for modules reached but left alone.
        duration_s: wall-clock seconds of the edit.
        codes: what :meth:`ExportableEdit.export` needs for exact integer codes, by
            parameter name (not in ``report.json``).
    """

    name: str
    params: dict[str, Any]
    layers: list[LayerStats] = field(default_factory=list)
    tied: list[list[str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    #: quant_rtn: the scales each weight was quantized with, held only as long as the result.
    codes: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def numel(self) -> int:
        """Number of weight elements the edit wrote."""
        return sum(layer.numel for layer in self.layers)

    def summary(self) -> EditSummary:
        """The read-only summary guards receive as ``context["edit"]``."""
        return EditSummary(
            name=self.name,
            params=MappingProxyType(dict(self.params)),
            layers=tuple(self.layers),
            tied=tuple(tuple(group) for group in self.tied),
            skipped=tuple(self.skipped),
            duration_s=self.duration_s,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable copy (non-finite floats become ``None``)."""
        return self.summary().to_dict()


@dataclass(frozen=True)
class EditSummary:
    """What the edit did, read-only: ``context["edit"]`` in every guard's ``validate``.

    Attributes:
        name: the edit's name (``quant_rtn`` or ``noop``).
        params: the edit's parsed parameters (a read-only mapping: ``params["bits"]``).
        layers: one :class:`LayerStats` per weight tensor written.
        tied: groups of parameter names sharing one tensor, which was edited once.
        skipped: ``"<module>: <reason>"`` for modules reached but left alone.
        duration_s: wall-clock seconds of the edit.
    """

    name: str
    params: Mapping[str, Any]
    layers: tuple[LayerStats, ...] = ()
    tied: tuple[tuple[str, ...], ...] = ()
    skipped: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def modules(self) -> frozenset[str]:
        """Names of the modules whose weight the edit wrote (``LayerStats.name``)."""
        return frozenset(layer.name for layer in self.layers)

    @property
    def parameters(self) -> frozenset[str]:
        """Parameter names the edit wrote, tied aliases included."""
        names = {name for layer in self.layers for name in (layer.param, *layer.tied_to)}
        return frozenset(names.union(*self.tied))

    @property
    def numel(self) -> int:
        """Number of weight elements the edit wrote."""
        return sum(layer.numel for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """What ``report.json`` records (non-finite floats become ``None``)."""
        return json_safe(
            {
                "name": self.name,
                "params": dict(self.params),
                "layers": [asdict(layer) for layer in self.layers],
                "tied": [list(group) for group in self.tied],
                "skipped": list(self.skipped),
                "numel": self.numel,
                "duration_s": self.duration_s,
            }
        )
