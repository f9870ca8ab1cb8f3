"""The timing plugin in a real run and around one guard, with invarlock's fixtures."""

import invarlock_guard_timing

from invarlock.core.api import Guard


class Slow(Guard):
    name = "slow"

    def validate(self, model, adapter, context):
        import time

        time.sleep(0.05)
        return {"passed": True, "action": "continue", "message": "slept", "metrics": {"n": 1}}


def test_wraps_a_guard_it_does_not_own(run_guard, invarlock_plugins):
    invarlock_plugins.register_hooks(invarlock_guard_timing, name="guard_timing")
    result = run_guard(Slow)
    timing = result.validate.metrics["timing"]
    assert result.validate.metrics["n"] == 1  # the guard's own metrics are kept
    assert timing["wall_s"] >= 0.05 and timing["peak_memory_bytes"] >= 0
    assert timing["memory_source"] == "process_peak_rss_growth"
    assert result.prepare.raw["timing"]["wall_s"] >= 0


def test_every_guard_call_of_a_run_is_timed_in_the_report(invarlock_project):
    project = invarlock_project("guards: {order: [invariants, spectral]}\n")
    outcome = project.run("-p", "guard_timing").assert_kept()
    for guard in ("invariants", "spectral"):
        assert outcome.guard(guard, "prepare")["result"]["timing"]["wall_s"] > 0
        assert outcome.guard(guard)["metrics"]["timing"]["wall_s"] > 0
    listed = project.plugins("hooks", "-p", "guard_timing", "--json").assert_ok().json()
    timing = next(c for c in listed["components"] if c["name"] == "guard_timing")
    assert (timing["kind"], timing["status"]) == ("hooks", "ready")
