"""The Markdown and HTML pages of real runs, read back the way a browser or a reviewer would:
the HTML is parsed, each plot is parsed as SVG, and nothing refers outside the page."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cli_helpers import run_cli
from report_helpers import RUNS, real_run, with_contract_sections

from invarlock.reports.compare import render_compare_html, render_compare_markdown
from invarlock.reports.html import render_html
from invarlock.reports.markdown import render_markdown
from invarlock.reports.plots import INSTALL_HINT
from invarlock.reports.view import build_view, load_report

RUN_SECTIONS = {
    "decision",
    "evaluation",
    "layers",
    "measures",
    "guards",
    "timeline",
    "run",
    "config",
}
COMPARE_SECTIONS = RUN_SECTIONS  # the same ids: the config section holds the differences
SVG = "{http://www.w3.org/2000/svg}"


class Page(HTMLParser):
    """Section ids, plot ids and every attribute that could load something."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.plots: list[str] = []
        self.references: list[str] = []
        self.tags: set[str] = set()
        self.feed(text)
        self.svgs = [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", text, re.DOTALL)]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(found.get("id") or "")
        if tag == "svg" and found.get("class") == "plot":
            self.plots.append(found.get("id") or "")
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data") and value:
                self.references.append(value)
        if tag == "link" or (tag == "style" and found.get("src")):
            self.references.append(found.get("href") or found.get("src") or "<link>")

    def handle_data(self, data: str) -> None:
        if "@import" in data or re.search(r"url\(\s*['\"]?(https?:)?//", data):
            self.references.append(data.strip()[:80])


def assert_self_contained(page: Page) -> None:
    external = [r for r in page.references if not r.startswith("#")]
    assert external == [], external
    assert not page.tags & {"script", "link", "img", "iframe", "object", "embed"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report-runs")


def run_dir(name: str, base: Path, model: Path) -> Path:
    return Path(real_run(name, base, model).run_dir)


@pytest.mark.parametrize("name", ["kept", "warned", "rolled_back", "evaluated", "gate"])
def test_the_run_writes_a_self_contained_html_page(
    name: str, base: Path, tiny_gpt2_dir: Path
) -> None:
    directory = run_dir(name, base, tiny_gpt2_dir)
    page = Page((directory / "report.html").read_text(encoding="utf-8"))
    assert set(page.sections) == RUN_SECTIONS
    assert page.sections[0] == "decision"  # the decision and why come first
    report = json.loads((directory / "report.json").read_text())
    expected = {"plot-layer-errors", "plot-timeline"}
    expected |= (
        {"plot-measures-spectral"} if "spectral" in report["config"]["guards"]["order"] else set()
    )
    expected |= {"plot-window-deltas"} if "evaluation" in report else set()
    assert expected <= set(page.plots)
    assert all(svg.tag == f"{SVG}svg" for svg in page.svgs)
    assert len(page.svgs) == len(page.plots)
    assert_self_contained(page)
    assert report["warnings"] == []


def test_the_page_shows_layers_in_model_order_and_the_decision_first(
    base: Path, tiny_gpt2_dir: Path
) -> None:
    view = load_report(run_dir("rolled_back", base, tiny_gpt2_dir))
    text = render_html(view)
    decision = text[text.index('<section id="decision">') : text.index('<section id="evaluation">')]
    assert "Rolled back (exit 1)" in decision and "spectral (validate)" in decision
    layers = text[text.index('<section id="layers">') : text.index('<section id="measures">')]
    positions = [layers.index(f"<td>{la.name}</td>") for la in view.layers]
    assert positions == sorted(positions)
    worst = view.worst_layers(1)[0].name
    row = layers[layers.rindex("<tr", 0, layers.index(f"<td>{worst}</td>")) :]
    assert row.startswith('<tr class="worst">')


def test_a_run_rolled_back_by_the_gate_says_so_first(base: Path, tiny_gpt2_dir: Path) -> None:
    view = load_report(run_dir("gate", base, tiny_gpt2_dir))
    assert view.status == "rolled_back" and view.deciders == ["evaluation gate"]
    assert view.evaluation is not None and view.evaluation.gate_passed is False
    text = render_html(view)
    decision = text[text.index('<section id="decision">') : text.index('<section id="evaluation">')]
    assert "gate failed: upper ≤ 1.0001" in decision and "Decided by: evaluation gate" in decision
    assert len(view.evaluation.deltas) == view.evaluation.windows_used == 12


def test_contract_sections_are_rendered_with_their_plots(base: Path, tiny_gpt2_dir: Path) -> None:
    directory = run_dir("kept", base, tiny_gpt2_dir)
    data = with_contract_sections(json.loads((directory / "report.json").read_text()))
    view = build_view(data, directory / "report.json")
    page = Page(render_html(view))
    assert {"plot-window-deltas", "plot-measures-rmt", "plot-measures-spectral"} <= set(page.plots)
    assert_self_contained(page)
    text = render_html(view)
    run = text[text.index('<section id="run">') : text.index('<section id="config">')]
    assert "<h3>Exports</h3>" in run and "1 file(s), 123,456 bytes" in run
    assert "<h3>Integrity checks</h3>" in run and f"cd{'cd' * 31}" in run
    markdown = render_markdown(view)
    ratio = data["evaluation"]["ratio"]
    assert f"ratio {ratio['point']:.4f} [{ratio['lower']:.4f}, {ratio['upper']:.4f}]" in markdown
    assert "9 of 12 windows (early stop: upper bound below the gate)" in markdown
    assert "gate passed: upper ≤ 1.1" in markdown


@pytest.mark.parametrize("name", list(RUNS))
def test_markdown_and_html_for_every_outcome(name: str, base: Path, tiny_gpt2_dir: Path) -> None:
    view = load_report(run_dir(name, base, tiny_gpt2_dir))
    markdown = render_markdown(view)
    assert markdown.startswith(f"## invarlock run `{view.run_id}`: {view.status_text}")
    assert f"**{view.headline}**" in markdown
    page = Page(render_html(view))
    assert set(page.sections) == RUN_SECTIONS
    assert_self_contained(page)
    if view.error:
        assert view.error["message"].split(":")[0] in markdown


def test_without_matplotlib_every_table_renders_and_says_how_to_get_plots(
    base: Path, tiny_gpt2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = load_report(run_dir("warned", base, tiny_gpt2_dir))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    page = Page(text := render_html(view))
    assert set(page.sections) == RUN_SECTIONS and page.svgs == []
    assert INSTALL_HINT.replace("'", "&#x27;") in text
    assert text.count("<table>") >= 4


def test_compare_two_runs_with_different_configs(base: Path, tiny_gpt2_dir: Path) -> None:
    a = load_report(run_dir("rolled_back", base, tiny_gpt2_dir))
    b = load_report(run_dir("kept", base, tiny_gpt2_dir))
    markdown = render_compare_markdown(a, b)
    assert "| edit.bits | 3 | 8 |" in markdown
    assert "| decision | Rolled back | Kept |" in markdown
    page = Page(text := render_compare_html(a, b))
    assert set(page.sections) == COMPARE_SECTIONS
    assert {"plot-layer-errors", "plot-measures-spectral", "plot-timeline"} <= set(page.plots)
    layer_plot = page.svgs[page.plots.index("plot-layer-errors")]
    legend = {t.text for t in layer_plot.iter(f"{SVG}text")}
    assert {"A: rolled_back", "B: kept"} <= legend  # both runs overlaid in one plot
    assert_self_contained(page)
    assert "+" in text and " pp</td>" in text


def test_html_off_or_render_failure_never_changes_the_decision(
    invarlock_project, tiny_gpt2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = f"model: {{id: {tiny_gpt2_dir}, device: cpu}}\nedit: {{name: quant_rtn, bits: 8}}\n"
    off = invarlock_project(config + "output: {dir: runs, html: false}\n").run()
    assert off.status == "kept" and not (off.run_dir / "report.html").exists()

    def broken(view: object) -> str:
        raise RuntimeError("no fonts")

    monkeypatch.setattr("invarlock.reports.html.render_html", broken)
    failed = invarlock_project(config).run().assert_status("kept", 0)
    assert not (failed.run_dir / "report.html").exists()
    on_disk = json.loads((failed.run_dir / "report.json").read_text())
    assert on_disk["warnings"] == ["report.html not written: RuntimeError: no fonts"]


def test_cli_renders_compares_and_validates(
    base: Path, tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    kept, warned = run_dir("kept", base, tiny_gpt2_dir), run_dir("warned", base, tiny_gpt2_dir)
    out = tmp_path / "cmp.html"
    result = run_cli("report", str(warned), str(kept), "--format", "html", "-o", str(out))
    assert result.code == 0, result.err
    assert f"Wrote {out}" in result.err and set(Page(out.read_text()).sections) == COMPARE_SECTIONS

    result = run_cli("report", str(kept), check_imports=True)
    assert result.code == 0 and result.out.startswith("## invarlock run")
    assert not {m.split(".")[0] for m in result.heavy_imports} & {"torch", "matplotlib"}

    broken = tmp_path / "report.json"
    report = json.loads((kept / "report.json").read_text())
    report["guards"][2]["action"] = "maybe"
    broken.write_text(json.dumps(report))
    result = run_cli("report", "validate", str(kept), str(broken))
    assert result.code == 2
    assert f"{kept / 'report.json'}: valid invarlock.report/v1" in result.out
    assert f"{broken}: invalid: $.guards[2].action: 'maybe' is not one of" in result.out

    broken.write_text(json.dumps(report)[:500])
    result = run_cli("report", str(broken))
    assert result.code == 2 and "not JSON" in result.err

    report["schema"], report["versions"]["invarlock"] = "invarlock.report/v3", "3.0.0"
    broken.write_text(json.dumps(report))
    result = run_cli("report", "validate", str(broken))
    assert result.code == 2 and "written by invarlock 3.0.0" in result.out


def test_report_help_imports_nothing_heavy() -> None:
    result = run_cli("report", "--help", check_imports=True)
    assert result.code == 0 and result.heavy_imports == []


def test_run_prints_the_html_report_path(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"model: {{id: {tiny_gpt2_dir}, device: cpu}}\nedit: {{name: quant_rtn, bits: 8}}\n"
        "output: {dir: runs, run_name: int8}\n"
    )
    result = run_cli("run", "-c", str(config), cwd=tmp_path)
    assert result.code == 0, result.err
    assert "HTML report: runs/int8/report.html" in result.out
    assert set(Page((tmp_path / "runs/int8/report.html").read_text()).sections) == RUN_SECTIONS


def test_a_report_without_phases_puts_its_timings_end_to_end(
    base: Path, tiny_gpt2_dir: Path
) -> None:
    directory = run_dir("kept", base, tiny_gpt2_dir)
    data = json.loads((directory / "report.json").read_text())
    del data["phases"]  # optional: reports of other writers may lack it
    view = build_view(data, directory / "report.json")
    assert [p.name for p in view.phases] == list(data["timings_s"])
    ends = [p.start_s + p.duration_s for p in view.phases]
    assert [p.start_s for p in view.phases[1:]] == pytest.approx(ends[:-1])
    assert "plot-timeline" in Page(render_html(view)).plots
