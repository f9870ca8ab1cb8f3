"""Output files are whole or absent: an error or interrupt mid-write leaves the old file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invarlock.core.atomic import atomic_write, write_json_atomic
from invarlock.core.report import RunReport


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_mid_write_keeps_the_old_file(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "report.json"
    target.write_text('{"old": true}\n')
    with pytest.raises(type(error)), atomic_write(target) as handle:
        handle.write('{"new": ')
        raise error
    assert target.read_text() == '{"old": true}\n'
    assert list(tmp_path.iterdir()) == [target]


def test_report_is_strict_json_even_with_nan_metrics(tmp_path: Path) -> None:
    metrics = {"x": float("nan"), "inf": float("inf"), "y": 1.5}
    report = RunReport(run_id="r1", guards=[{"metrics": metrics}])
    write_json_atomic(tmp_path / "report.json", report.to_dict())
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["guards"][0]["metrics"] == {"x": None, "inf": None, "y": 1.5}
    assert data["schema"] == "invarlock.report/v1"
