"""The hello guard, tested with invarlock's shipped fixtures."""

from invarlock_hello import HelloGuard


def test_counts_what_the_edit_changed(run_guard):
    result = run_guard(HelloGuard)
    assert result.action == "continue"
    assert 0 < result.validate.metrics["changed"] < result.validate.metrics["tensors"]
    assert result.context["prepare"]["tensors"] == result.validate.metrics["tensors"]


def test_require_change_aborts_a_noop_edit(run_guard):
    result = run_guard(HelloGuard, options={"require_change": True}, edit="noop")
    assert result.action == "abort" and result.validate.message == "the edit changed nothing"


def test_installed_through_its_entry_point(invarlock_project):
    project = invarlock_project("guards: {order: [invariants, hello]}\n")
    outcome = project.run("-p", "hello").assert_kept()
    assert outcome.guard("hello")["metrics"]["changed"] > 0
    listing = project.plugins("guards", "--json", "-p", "hello").assert_ok().json()
    (hello,) = [c for c in listing["components"] if c["name"] == "hello"]
    assert (hello["origin"], hello["kind"], hello["status"]) == ("plugin", "guard", "ready")
    assert hello["distribution"] == "invarlock-hello" and hello["plugin"] == "hello"
