"""The one JSON-safety function: strict JSON out, non-finite numbers as ``null``."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from invarlock.core.edit import EditResult, LayerStats
from invarlock.core.jsonsafe import json_safe
from invarlock.core.results import GuardOutcome
from invarlock.runner.events import EventLog


def test_non_finite_floats_become_null_everywhere() -> None:
    value = {
        "nan": math.nan,
        "inf": [math.inf, -math.inf, 1.5],
        "numpy": np.float32("nan"),
        "tensor": torch.tensor([1.0, float("inf")]),
        "scalar": np.int64(3),
        ("tuple", 1): {2, 3},
    }
    safe = json_safe(value)
    assert safe == {
        "nan": None,
        "inf": [None, None, 1.5],
        "numpy": None,
        "tensor": [1.0, None],
        "scalar": 3,
        "('tuple', 1)": [2, 3],
    }
    json.dumps(safe, allow_nan=False)


def test_unknown_objects_become_their_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    value = {"x": Thing(), "ok": True, "n": None}
    assert json_safe(value) == {"x": "<thing>", "ok": True, "n": None}


def test_edit_results_guard_outcomes_and_events_share_the_policy() -> None:
    layer = LayerStats("m", "weight", "Linear", [2, 2], 4, "float32", 8, "sym/channel", 0,
                       0.1, 0.2, math.nan, math.inf)  # fmt: skip
    edit = EditResult("quant_rtn", {"bits": 8}, layers=[layer]).to_dict()
    assert edit["layers"][0]["rel_error"] is None and edit["layers"][0]["max_error"] is None
    outcome = GuardOutcome("g", "validate", True, "continue", "ok", metrics={"x": math.nan})
    assert outcome.to_dict()["metrics"] == {"x": None}
    log = EventLog(None)
    log.emit("phase", value=math.inf)
    assert log.events[0]["value"] is None
