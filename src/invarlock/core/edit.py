"""The edit contract: what the runner calls on an edit, and what an edit reports.

Torch-free: ``invarlock plugins edits`` imports this module to list the built-in edits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from invarlock.core.errors import ConfigError
from invarlock.core.jsonsafe import json_safe

__all__ = ["Edit", "EditConfigError", "EditResult", "LayerStats"]


class EditConfigError(ConfigError, ValueError):
    """An edit's parameters are wrong; the message names the key path (``edit.bits: ...``)."""


class Edit(Protocol):
    """A built-in weight edit (``quant_rtn`` or ``noop``), driven by the runner.

    The runner parses the YAML block once, snapshots :meth:`targets`, then calls :meth:`apply`.
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


@dataclass
class LayerStats:
    """What the edit did to one weight tensor.

    ``rel_error`` is ``||W' - W||_F / ||W||_F`` and ``max_error`` is ``max |W' - W|``; both are
    ``None`` unless the edit ran with ``stats: true``.
    """

    name: str  # module name, e.g. "transformer.h.0.attn.c_attn"
    param: str  # the weight's parameter name as the module sees it
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
        duration_s: wall-clock seconds of the edit.
    """

    name: str
    params: dict[str, Any]
    layers: list[LayerStats] = field(default_factory=list)
    #: Groups of parameter names that share one tensor, which was quantized once.
    tied: list[list[str]] = field(default_factory=list)
    #: ``"<module>: <reason>"`` for modules the patterns reached that were left alone.
    skipped: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def numel(self) -> int:
        """Number of weight elements the edit wrote."""
        return sum(layer.numel for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable copy (non-finite floats become ``None``)."""
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
