"""``quant_rtn``: round-to-nearest weight quantization, applied in place (quantize-dequantize).

The model stays a float model of the same dtype and runs as before; only the selected weights
now lie on an integer grid. The scales used travel in the result (``EditResult.codes``: a few
floats per channel or group, per weight) so that :meth:`QuantRTN.export` can hand the
exporters the edited model's exact integer codes (:class:`RTNCodes`). The math lives in
:mod:`invarlock.edits.kernels`, the scope in :mod:`invarlock.edits.scope`; both import
torch, so this module imports them lazily and :meth:`QuantRTN.parse` and
:meth:`QuantRTN.export` work without torch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invarlock.core.edit import EditResult, LayerStats
from invarlock.core.structure import dtype_name
from invarlock.edits.config import QuantSpec, RTNConfig, parse_rtn

if TYPE_CHECKING:
    from invarlock.edits.codes import Codes, ScaleRecord
    from invarlock.edits.kernels import Workspace
    from invarlock.edits.scope import Target

__all__ = ["QuantRTN", "RTNCodes"]


@dataclass
class RTNCodes:
    """quant_rtn's integer form, what the code-storing exporters write: the configuration and,
    per weight it quantized (by parameter name), the :class:`~invarlock.edits.codes.ScaleRecord`.

    A weight without a record that still holds (not edited, or changed since) is quantized
    in place when its codes are asked for, exactly as :meth:`QuantRTN.apply` would, and its
    record kept for the next format.
    """

    config: RTNConfig
    records: dict[str, ScaleRecord] = field(default_factory=dict)

    @property
    def spec(self) -> QuantSpec:
        """The quantization spec (bits, symmetric, group size, grid)."""
        return self.config.spec

    def targets(self, model: Any) -> list[Target]:
        """The weights the edit writes in ``model``, one :class:`Target` per tensor."""
        from invarlock.edits.scope import select_targets

        return select_targets(model, self.config).targets

    def codes(self, target: Target, workspace: Workspace | None = None) -> Codes:
        """The :class:`~invarlock.edits.codes.Codes` of ``target``'s weight."""
        from invarlock.edits.codes import codes_of

        name = target.canonical
        codes, self.records[name] = codes_of(
            target.weight, target.out_axis, self.spec, self.records.get(name), workspace
        )
        return codes


class QuantRTN:
    """The built-in RTN quantization edit."""

    name = "quant_rtn"

    def parse(self, params: Mapping[str, Any] | None) -> RTNConfig:
        """Validate ``params`` (flat or under ``plan:``); see ``rtn_config``."""
        return parse_rtn(params)

    def targets(self, model: Any, config: RTNConfig) -> list[str]:
        """Parameter names :meth:`apply` writes, one per tensor (tied aliases are in
        ``EditResult.tied``), as ``model.named_parameters()`` yields them."""
        from invarlock.edits.scope import select_targets

        return [target.canonical for target in select_targets(model, config).targets]

    def apply(self, model: Any, config: RTNConfig) -> EditResult:
        """Quantize the selected weights in place, each tensor once, layer by layer."""
        from invarlock.edits.codes import quantize_recorded_
        from invarlock.edits.kernels import Workspace
        from invarlock.edits.scope import select_targets

        start = time.perf_counter()
        selection = select_targets(model, config)
        spec, workspace, layers, records = config.spec, Workspace(), [], {}
        for target in selection.targets:
            began = time.perf_counter()
            try:
                stats, records[target.canonical] = quantize_recorded_(
                    target.weight,
                    target.out_axis,
                    spec,
                    stats=config.stats,
                    workspace=workspace,
                )
            except ValueError as error:
                raise ValueError(f"quant_rtn: {target.param}: {error}") from error
            weight = target.weight
            layers.append(
                LayerStats(
                    name=target.module,
                    param=target.param,
                    module_type=target.module_type,
                    shape=list(weight.shape),
                    numel=weight.numel(),
                    dtype=dtype_name(weight.dtype),
                    bits=spec.bits,
                    scheme=spec.scheme,
                    out_axis=target.out_axis,
                    scale_min=stats.scale_min,
                    scale_max=stats.scale_max,
                    rel_error=stats.rel_error,
                    max_error=stats.max_error,
                    tied_to=[name for name in target.aliases if name != target.param],
                    duration_ms=(time.perf_counter() - began) * 1e3,
                )
            )
        return EditResult(
            name=self.name,
            params=config.to_dict(),
            layers=layers,
            tied=selection.tied,
            skipped=selection.skipped,
            duration_s=time.perf_counter() - start,
            codes=records,
        )

    def export(self, config: RTNConfig, result: EditResult | None = None) -> RTNCodes:
        """The integer form of this edit; ``result`` (of :meth:`apply` on the model being
        exported) makes the codes of the edited weights exact."""
        return RTNCodes(config, dict(result.codes) if result is not None else {})
