"""``invarlock export RUN_DIR``: re-create a finished run's guarded model and export it.

A run directory keeps ``report.json``, which holds the run's configuration, the whole-model
fingerprint taken at load (``integrity.digest_at_load``) and, per layer, the
edit's exact error statistics. quant_rtn is deterministic, so the guarded model is rebuilt
by loading the same model, checking that the digest matches (same weights as the run saw),
re-applying the same edit, and checking that every layer's ``rel_error``/``max_error``
equals the recorded one. Guards are not re-run: they vouched for exactly this model. A run
that was rolled back or failed has nothing vouched for and is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invarlock.core.errors import ConfigError, ModelLoadError
from invarlock.exporters.base import ExportError, Source

__all__ = ["Replayed", "export_run", "read_run"]

VOUCHED = ("kept", "warned")


@dataclass
class Replayed:
    """The guarded model of a finished run, rebuilt."""

    model: Any
    codes: Any  # the edit's integer form (export_form), from re-applying it to ``model``
    source: Source


def read_run(run_dir: Path) -> dict[str, Any]:
    """The run's ``report.json``; ``ConfigError`` (exit 2) unless it vouched for an edit."""
    path = run_dir / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: no report.json; not an invarlock run directory") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: unreadable: {error}") from None
    status = report.get("status")
    if status not in VOUCHED:
        raise ConfigError(
            f"{run_dir}: the run ended {status!r}; only a kept or warned edit was vouched for"
            " by the guards, so there is nothing to export"
        )
    for key in ("config", "snapshot", "edit"):
        if not isinstance(report.get(key), dict):
            raise ConfigError(f"{path}: lacks {key!r}, which re-creating the model needs")
    return report


def replay(report: dict[str, Any], manager: Any, formats: Sequence[str]) -> Replayed:
    """Load, verify and re-edit the run's model; refuse unfit formats before loading."""
    import yaml

    from invarlock.core.edit import export_form
    from invarlock.exporters import refusals
    from invarlock.runner.config import parse_config
    from invarlock.runner.plan import build_plan

    config = parse_config(yaml.safe_dump(report["config"]))
    plan = build_plan(config, manager)
    for name, reason in refusals(list(formats), export_form(plan.edit, plan.edit_config)).items():
        raise ConfigError(f"--format {name}: cannot hold this run's edit: {reason}")
    try:
        loaded = manager.load_model(
            plan.adapter_resolved, plan.model_id, plan.device, plan.model_options
        )
    except (OSError, ValueError, RuntimeError, TypeError, ImportError) as error:
        raise ModelLoadError(
            f"cannot load model {plan.model_id!r} again: {type(error).__name__}: {error}"
        ) from error
    model = loaded.model
    _check_same_weights(model, report, plan.model_id)
    result = plan.edit.apply(model, plan.edit_config)
    _check_layers(result.to_dict().get("layers", []), report["edit"].get("layers", []))
    codes = export_form(plan.edit, plan.edit_config, result)
    return Replayed(model, codes, Source.of(plan.model_id, loaded.info))


def _check_same_weights(model: Any, report: dict[str, Any], model_id: str) -> None:
    """The re-loaded model must hold, bit for bit, what the run loaded (its whole-model
    fingerprint in ``integrity.digest_at_load``)."""
    from invarlock.models.fingerprint import Fingerprint

    recorded = (report.get("integrity") or {}).get("digest_at_load")
    if recorded is None:
        raise ExportError("report.json has no integrity.digest_at_load: the run cannot be replayed")
    if Fingerprint.of(model).digest != recorded:
        raise ExportError(
            f"model {model_id!r} no longer holds the weights the run loaded (its whole-model"
            " fingerprint differs from report.json's integrity.digest_at_load); the guarded"
            " model cannot be re-created"
        )


def _check_layers(now: list[dict[str, Any]], then: list[dict[str, Any]]) -> None:
    """Every layer's error statistics must equal the run's (they are exact and deterministic)."""
    keys = ("param", "rel_error", "max_error", "scale_min", "scale_max")
    mine = [[layer.get(key) for key in keys] for layer in now]
    theirs = [[layer.get(key) for key in keys] for layer in then]
    if json.loads(json.dumps(mine)) != theirs:
        raise ExportError(
            "re-applying the edit did not reproduce the run's per-layer statistics;"
            " the guarded model cannot be re-created"
        )


def export_run(run_dir: Path, formats: Sequence[str], manager: Any) -> list[dict[str, Any]]:
    """Export a finished run's guarded model into ``run_dir``; append to its report.json."""
    from invarlock.core.atomic import write_json_atomic
    from invarlock.exporters.run import check_free, export_all

    report = read_run(run_dir)
    check_free(formats, run_dir)
    replayed = replay(report, manager, formats)
    entries = export_all(formats, replayed.model, replayed.codes, run_dir, replayed.source)
    report["exports"] = [*(report.get("exports") or []), *entries]
    write_json_atomic(run_dir / "report.json", report)
    return entries
