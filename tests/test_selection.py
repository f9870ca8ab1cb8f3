"""One weight selection for the edit and the guards (invarlock.core.selection), on real tiny
GPT-2 and LLaMA checkpoints: the shipped configs keep selecting the same weights, both
sides read a pattern alike, and tied weights are selected once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from test_rtn import GPT2_BLOCK, LLAMA_BLOCK  # the default scope, written out
from transformers import AutoModelForCausalLM

from invarlock.edits import get_edit
from invarlock.guards.scope import resolve_scope

torch.set_num_threads(1)

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def load(model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(model_dir).eval()


@pytest.fixture(params=["gpt2", "llama"])
def family(request, tiny_gpt2_dir: Path, tiny_llama_dir: Path):
    if request.param == "gpt2":
        return load(tiny_gpt2_dir), GPT2_BLOCK
    return load(tiny_llama_dir), LLAMA_BLOCK


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_shipped_configs_select_the_documented_default_scope(config: Path, family) -> None:
    model, modules = family
    data = yaml.safe_load(config.read_text())
    edit = get_edit(data["edit"]["name"])
    params = {k: v for k, v in data["edit"].items() if k != "name"}
    expected = sorted(f"{module}.weight" for module in modules)
    assert sorted(edit.targets(model, edit.parse(params))) == expected
    for guard in data.get("guards", {}).get("order", []):
        block = data["guards"].get(guard) or {}
        scope = resolve_scope(
            model, tuple(block.get("include") or ()), tuple(block.get("exclude") or ())
        )
        if guard != "invariants":
            assert sorted(w.name for w in scope.weights) == expected, guard


@pytest.mark.parametrize(
    "patterns",
    [
        ("*down_proj", "*.down_proj.*", "*.down_proj.weight"),  # module or parameter name
        ("model.layers.1.*", "model.layers.1.*.weight"),
    ],
)
def test_a_pattern_reaches_a_module_or_its_weight_alike(tiny_llama_dir: Path, patterns) -> None:
    model = load(tiny_llama_dir)
    edit = get_edit("quant_rtn")
    picked = set()
    for pattern in patterns:
        targets = edit.targets(model, edit.parse({"include": [pattern]}))
        scoped = [w.name for w in resolve_scope(model, (pattern,), ()).weights]
        assert sorted(targets) == sorted(scoped), pattern  # edit and guards agree
        picked.add(tuple(sorted(targets)))
        excluded = edit.targets(model, edit.parse({"exclude": [pattern]}))
        unscoped = [w.name for w in resolve_scope(model, (), (pattern,)).weights]
        assert sorted(excluded) == sorted(unscoped), pattern
    assert len(picked) == 1  # every spelling selects the same weights


def test_tied_weights_are_selected_once(tiny_gpt2_dir: Path) -> None:
    model = load(tiny_gpt2_dir)
    assert model.lm_head.weight is model.transformer.wte.weight
    edit = get_edit("quant_rtn")
    config = edit.parse({"include": ["lm_head", "transformer.wte"]})
    assert edit.targets(model, config) == ["transformer.wte.weight"]  # one tensor
    scope = resolve_scope(model, ("lm_head.weight", "transformer.wte.weight"), ())
    assert [(w.name, w.embedding) for w in scope.weights] == [("lm_head.weight", False)]


def test_an_embedding_is_reached_only_by_an_include(tiny_llama_dir: Path) -> None:
    model = load(tiny_llama_dir)  # embed_tokens is tied to lm_head
    assert not any(w.embedding for w in resolve_scope(model, (), ()).weights)
    scope = resolve_scope(model, ("model.embed_tokens",), ())
    assert [(w.name, w.embedding) for w in scope.weights] == [("model.embed_tokens.weight", True)]
