"""``quant_rtn``: round-to-nearest weight quantization, applied in place (quantize-dequantize).

The model stays a float model of the same dtype and runs as before; only the selected weights
now lie on an integer grid. The scales used are remembered per weight (a few floats per
channel or group, dropped with the weight) so that :func:`invarlock.edits.export.
export_quantized` can ship the edited model as exact integer codes. The math lives in
:mod:`invarlock.edits.kernels`, the scope in :mod:`invarlock.edits.scope`; both import
torch, so this module imports them lazily and :meth:`QuantRTN.parse` works without torch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from invarlock.core.edit import EditResult, LayerStats
from invarlock.edits.config import RTNConfig, parse_rtn

__all__ = ["QuantRTN"]


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
        spec, workspace, layers = config.spec, Workspace(), []
        for target in selection.targets:
            began = time.perf_counter()
            try:
                stats = quantize_recorded_(
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
                    dtype=str(weight.dtype).removeprefix("torch."),
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
        )
