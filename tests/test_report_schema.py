"""report.json and the plan have versioned JSON Schemas: every report the runner writes is
valid, a broken one is named by its first invalid field, and other versions are recognised."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from cli_helpers import run_cli
from report_helpers import RUNS, real_run, with_contract_sections

from invarlock.core.report import REPORT_SCHEMA
from invarlock.reports.schema_doc import regions, render_fields
from invarlock.reports.validate import known_schemas, load_schema, problems
from invarlock.runner.plan import PLAN_SCHEMA

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2_dir: Path) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("report-runs")
    reports = {name: real_run(name, base, tiny_gpt2_dir) for name in RUNS}
    return {
        name: json.loads((Path(r.run_dir) / "report.json").read_text())
        for name, r in reports.items()
    }


def test_the_runner_writes_a_schema_for_each_kind_it_writes() -> None:
    assert {REPORT_SCHEMA, PLAN_SCHEMA} <= set(known_schemas())
    for schema_id in known_schemas():
        assert load_schema(schema_id)["title"] == schema_id


@pytest.mark.parametrize("name", list(RUNS))
def test_every_report_the_runner_writes_is_valid(runs: dict[str, dict], name: str) -> None:
    report = runs[name]
    assert report["status"] == RUNS[name][-1]
    assert problems(report) == []
    assert [p["name"] for p in report["phases"]] == list(report["timings_s"])


def test_contract_sections_of_the_other_streams_are_valid(runs: dict[str, dict]) -> None:
    assert problems(with_contract_sections(runs["kept"])) == []
    not_applicable = {**runs["kept"], "evaluation": None, "integrity": None, "exports": None}
    assert problems(not_applicable) == []  # a writer may say null instead of leaving it out


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("guards", 3, "action"), "maybe", "$.guards[3].action"),
        (("edit", "layers", 2, "rel_error"), "large", "$.edit.layers[2].rel_error"),
        (("evaluation", "ratio", "confidence"), 1.5, "$.evaluation.ratio.confidence"),
        (("exports", 0, "files", 0, "bytes"), -1, "$.exports[0].files[0].bytes"),
        (("status",), "fine", "$.status"),
    ],
)
def test_the_first_invalid_field_is_named_by_its_json_path(
    runs: dict[str, dict], path: tuple, value: object, where: str
) -> None:
    report = with_contract_sections(runs["kept"])
    target = report
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    found = problems(report)
    assert found and found[0].path == where, found


def test_an_unknown_top_level_key_is_invalid(runs: dict[str, dict]) -> None:
    report = copy.deepcopy(runs["kept"])
    report["evalution"] = {}
    assert "evalution" in problems(report)[0].message


def test_another_version_is_told_which_version_wrote_it(runs: dict[str, dict]) -> None:
    report = copy.deepcopy(runs["kept"])
    report["schema"] = "invarlock.report/v9"
    report["versions"]["invarlock"] = "9.1.0"
    (problem,) = problems(report)
    assert problem.path == "$.schema"
    assert "written by invarlock 9.1.0" in problem.message
    assert REPORT_SCHEMA in problem.message


def test_a_document_without_schema_is_not_a_report() -> None:
    assert problems({"status": "kept"})[0].path == "$.schema"
    assert problems([1, 2])[0].path == "$"


def test_dry_run_json_is_a_valid_plan(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"model: {{id: {tiny_gpt2_dir}}}\nedit: {{name: quant_rtn, bits: 8}}\n")
    result = run_cli("run", "-c", str(config), "--dry-run", "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    plan = result.json()
    assert plan["schema"] == PLAN_SCHEMA
    assert problems(plan) == []
    del plan["edit"]
    assert problems(plan)[0].message == "'edit' is a required property"


def test_docs_describe_every_field_of_the_schemas() -> None:
    documented = regions((REPO / "docs" / "report.md").read_text(encoding="utf-8"))
    assert set(documented) == set(known_schemas())
    for schema_id, table in documented.items():
        assert table == render_fields(schema_id), (
            "docs/report.md is out of date: python -m invarlock.reports.schema_doc docs/report.md"
        )
