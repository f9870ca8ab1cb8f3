"""The shipped pytest plugin (``invarlock.testing.pytest_plugin``): its fixtures used in this
suite, and from an outside package's test suite in a subprocess, through ``pytest11``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from invarlock.core.api import Guard
from invarlock.core.results import MalformedGuardResult


class RecordingGuard(Guard):
    """Keeps what it was given so the test can compare prepare and validate."""

    name = "recording"

    def __init__(self, limit: float = 1.0) -> None:
        self.limit = limit
        self.prepared_with: dict = {}

    def prepare(self, model, adapter, calib, policy):
        self.prepared_with = {"policy": dict(policy), "calib": calib}
        return {"ready": True, "tensors": sum(1 for _ in model.parameters())}

    def validate(self, model, adapter, context):
        return {
            "passed": True,
            "action": "continue",
            "message": f"limit {self.limit}",
            "metrics": {"context_keys": sorted(context)},
        }


def test_run_guard_goes_through_prepare_edit_validate(run_guard) -> None:
    result = run_guard(RecordingGuard, options={"limit": 2.0}, edit_params={"bits": 4})
    assert result.prepare.phase == "prepare" and result.prepare.raw["tensors"] > 0
    assert result.guard.prepared_with == {"policy": {"limit": 2.0}, "calib": None}
    assert result.validate.message == "limit 2.0"
    assert result.edit.name == "quant_rtn" and result.edit.params["bits"] == 4
    context = result.context
    assert context["prepare"] == result.prepare.raw
    assert context["edit"] == result.edit.summary() and context["policy"] == {"limit": 2.0}
    assert context["edit"].name == "quant_rtn" and context["edit"].params["bits"] == 4
    assert context["model"]["model_type"] == "gpt2" and context["run_id"] == "test-run"
    assert result.validate.metrics["context_keys"] == sorted(context)


def test_run_guard_context_is_the_one_a_run_builds(invarlock_project) -> None:
    project = invarlock_project(
        "guards: {order: [capture]}\n",
        plugins="""
        from invarlock import hookimpl
        from invarlock.core.api import Guard

        SEEN = {}

        class Capture(Guard):
            name = "capture"
            def validate(self, model, adapter, context):
                SEEN["keys"] = sorted(context)
                return {"passed": True, "action": "continue", "message": "ok"}

        @hookimpl
        def invarlock_register_guards(register):
            register(Capture)
        """,
    )
    outcome = project.run().assert_kept()
    assert outcome.local.SEEN["keys"] == ["edit", "model", "policy", "prepare", "run_id"]


def test_run_guard_applies_the_host_result_checks(run_guard) -> None:
    class Sloppy(Guard):
        name = "sloppy"

        def validate(self, model, adapter, context):
            return {"passed": False, "action": "continue", "message": "?"}

    with pytest.raises(MalformedGuardResult, match="passed=False with action 'continue'"):
        run_guard(Sloppy)


def test_after_edit_damage_reaches_validate(run_guard) -> None:
    class Finite(Guard):
        name = "finite"

        def validate(self, model, adapter, context):
            import torch

            bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
            if bad:
                return {"passed": False, "action": "abort", "message": bad[0]}
            return {"passed": True, "action": "continue", "message": "finite"}

    def poison(model):
        import torch

        with torch.no_grad():
            next(model.parameters())[0, 0] = float("nan")

    assert run_guard(Finite).action == "continue"
    assert run_guard(Finite, after_edit=poison).action == "abort"


def test_isolated_manager_has_builtins_and_the_test_plugins_only(invarlock_plugins) -> None:
    import types

    hooks = types.ModuleType("my_hooks")
    hooks.invarlock_edit_applied = lambda run, result: None
    invarlock_plugins.register_guard(RecordingGuard)
    invarlock_plugins.register_hooks(hooks)
    manager = invarlock_plugins.manager
    origins = {p.name: p.origin.value for p in manager.plugins}
    assert origins["recording"] == "plugin" and origins["my_hooks"] == "plugin"
    assert all(o in ("builtin", "plugin") for o in origins.values())
    assert set(origins) - {"recording", "my_hooks"} <= {
        p.name for p in manager.plugins if p.origin.value == "builtin"
    }
    assert invarlock_plugins.problems() == []
    with pytest.raises(RuntimeError, match="register before"):
        invarlock_plugins.register_hooks(types.ModuleType("late"))


def test_a_broken_class_is_reported_like_an_installed_one(invarlock_plugins) -> None:
    class NeedsArgument(Guard):
        name = "needs_argument"

        def __init__(self, threshold: float) -> None:
            self.threshold = threshold

        def validate(self, model, adapter, context):
            return {"passed": True, "action": "continue", "message": "ok"}

    invarlock_plugins.register_guard(NeedsArgument)
    (problem,) = invarlock_plugins.problems()
    assert problem.startswith("guard 'needs_argument': cannot be constructed from its defaults")


def test_tiny_models_are_cached_and_copies_are_independent(tiny_models, tiny_tokenizer) -> None:
    import torch

    first, second = tiny_models.model(), tiny_models.model()
    assert first is not second
    with torch.no_grad():
        next(first.parameters()).zero_()
    assert next(second.parameters()).abs().sum() > 0
    assert tiny_models.directory() == tiny_models.directory()
    ids = tiny_tokenizer("It is a truth universally acknowledged")["input_ids"]
    assert len(ids) > 3 and max(ids) < first.config.vocab_size


def test_project_runs_plugins_listing_in_process(invarlock_project) -> None:
    project = invarlock_project(
        plugins='''
        from invarlock import hookimpl
        from invarlock.core.api import Guard

        class Local(Guard):
            """A project guard."""
            name = "local_one"
            def validate(self, model, adapter, context):
                return {"passed": True, "action": "continue", "message": "ok"}

        @hookimpl
        def invarlock_register_guards(register):
            register(Local)
        '''
    )
    document = project.plugins("--json").assert_ok().json()
    local_one = next(c for c in document["components"] if c["name"] == "local_one")
    assert (local_one["origin"], local_one["kind"], local_one["status"]) == (
        "local",
        "guard",
        "ready",
    )


def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys, invarlock.testing.pytest_plugin\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


OUTSIDE_TEST = """
from invarlock.core.api import Guard


class Always(Guard):
    name = "always"

    def validate(self, model, adapter, context):
        return {"passed": True, "action": "warn", "message": "looked"}


def test_guard(run_guard):
    assert run_guard(Always).action == "warn"


def test_project(invarlock_project):
    project = invarlock_project("guards: {order: [invariants]}\\nedit: {name: noop}\\n")
    outcome = project.run("--json").assert_kept()
    assert outcome.json()["status"] == "kept"
    assert outcome.guard("invariants")["passed"] is True
    assert "invarlock_report" in outcome.hooks_called()
"""


@pytest.mark.slow
def test_fixtures_from_an_outside_suite_in_a_subprocess(pytester: pytest.Pytester) -> None:
    """No conftest: the fixtures arrive through the ``pytest11`` entry point alone."""
    pytester.makepyfile(test_outside=textwrap.dedent(OUTSIDE_TEST))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
