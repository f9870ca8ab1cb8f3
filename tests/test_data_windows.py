"""Data sources and deterministic windows: determinism, disjointness, deduplication, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invarlock.core.errors import EXIT_MODEL, ConfigError, DataError
from invarlock.data.settings import DatasetSection
from invarlock.data.sources import read_texts
from invarlock.data.windows import cut_windows, fingerprint_rows, tokenize
from invarlock.runner.config import parse_config


def spec(**changes: object) -> DatasetSection:
    base = {"seq_len": 8, "eval_windows": 6, "calib_windows": 4, "seed": 0}
    return DatasetSection(**{**base, **changes})  # type: ignore[arg-type]


def positions(ids: list[int], rows: list[list[int]], seq_len: int) -> set[int]:
    """Token positions covered by ``rows`` (ids are distinct, so each row has one place)."""
    covered: set[int] = set()
    for row in rows:
        start = ids.index(row[0])
        assert ids[start : start + seq_len] == row
        covered.update(range(start, start + seq_len))
    return covered


def test_windows_are_deterministic_and_depend_on_the_seed() -> None:
    ids = list(range(400))
    first, again = cut_windows(spec(), ids), cut_windows(spec(), ids)
    assert first == again
    assert first.fingerprint == fingerprint_rows(first.eval, 8)
    other = cut_windows(spec(seed=1), ids)
    assert other.eval != first.eval and other.fingerprint != first.fingerprint


@pytest.mark.parametrize("stride", [None, 3, 8, 11])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_text_gives_disjoint_non_overlapping_windows(stride: int | None, seed: int) -> None:
    ids = list(range(300))
    windows = cut_windows(spec(stride=stride, seed=seed), ids)
    assert len(windows.eval) == 6 and len(windows.calib) == 4
    step = stride or 8
    for row in windows.eval + windows.calib:
        assert len(row) == 8 and row[0] % step == 0  # on the stride grid
    eval_pos = positions(ids, windows.eval, 8)
    calib_pos = positions(ids, windows.calib, 8)
    assert len(eval_pos) == 6 * 8 and len(calib_pos) == 4 * 8  # no overlap within a set
    assert not eval_pos & calib_pos  # nor across the sets


def test_duplicate_windows_are_skipped() -> None:
    ids = [7] * 80 + list(range(100, 180))  # ten identical windows, then ten distinct ones
    windows = cut_windows(spec(eval_windows=8, calib_windows=3), ids)
    rows = [tuple(r) for r in windows.eval + windows.calib]
    assert len(set(rows)) == len(rows) == 11
    assert rows.count((7,) * 8) == 1


def test_a_separate_calibration_text_shares_no_window_with_evaluation() -> None:
    eval_ids = list(range(200))
    calib_ids = list(range(100, 300))  # overlaps the evaluation text's ids on purpose
    windows = cut_windows(spec(eval_windows=10, calib_windows=10), eval_ids, calib_ids)
    assert not {tuple(r) for r in windows.eval} & {tuple(r) for r in windows.calib}


def test_too_little_text_is_a_data_error_with_exit_code_4() -> None:
    with pytest.raises(DataError, match="not enough text for 6 evaluation windows") as info:
        cut_windows(spec(), list(range(40)))
    assert info.value.exit_code == EXIT_MODEL
    with pytest.raises(DataError, match="calibration windows"):
        cut_windows(spec(), list(range(60)))  # 6 eval windows fit, 4 calib do not


def test_text_and_jsonl_sources(tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("Call me Ishmael.", encoding="utf-8")
    assert read_texts(spec(source="text", path=str(text))).eval_text == "Call me Ishmael."
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps({"body": t, "n": i}) for i, t in enumerate(["one", "two"])) + "\n"
    )
    texts = read_texts(spec(source="jsonl", path=str(jsonl), field="body"))
    assert texts.eval_text == "one\n\ntwo" and texts.calib_text is None
    with pytest.raises(DataError, match=r"a.jsonl:1: record has no field 'text'"):
        read_texts(spec(source="jsonl", path=str(jsonl), field="text"))
    with pytest.raises(DataError, match="no such file"):
        read_texts(spec(source="text", path=str(tmp_path / "missing.txt")))


def test_hf_source_needs_the_network_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INVARLOCK_ALLOW_NETWORK", raising=False)
    with pytest.raises(DataError, match="INVARLOCK_ALLOW_NETWORK=1") as info:
        read_texts(spec(source="hf", name="wikitext"))
    assert info.value.exit_code == EXIT_MODEL


def test_tokenize_uses_no_special_tokens(tiny_llama_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)  # prepends <s> by default
    ids = tokenize(tokenizer, "It is a truth universally acknowledged")
    assert ids and tokenizer.bos_token_id not in ids


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("dataset:\n  source: web\n", r"run.yaml:4: dataset.source: must be one of bundled"),
        ("dataset:\n  seq_len: 1\n", r"run.yaml:4: dataset.seq_len: must be an integer >= 2"),
        ("dataset:\n  source: text\n", r"dataset.path: source 'text' needs a file path"),
        ("dataset:\n  colour: red\n", r"run.yaml:4: dataset.colour: unknown key"),
        ("eval:\n  gate_on: mean\n", r"run.yaml:4: eval.gate_on: must be one of upper, point"),
        ("eval:\n  max_ppl_ratio: -1\n", r"run.yaml:4: eval.max_ppl_ratio: must be a number > 0"),
        ("eval:\n  confidence: 1.5\n", r"run.yaml:4: eval.confidence: must be a number in"),
    ],
)
def test_config_errors_name_file_line_and_key(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config("model:\n  id: m\n" + yaml_text, path=Path("run.yaml"))


def test_no_dataset_section_means_no_dataset() -> None:
    config = parse_config("model:\n  id: m\n")
    assert config.dataset is None and config.eval is None
    config = parse_config("model:\n  id: m\neval:\n  max_ppl_ratio: null\n")
    assert config.dataset == DatasetSection() and config.eval is not None
    assert config.eval.max_ppl_ratio is None
