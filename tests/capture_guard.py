"""The source of a local plugin file whose guard ``capture`` keeps what the run hands it.

Append ``Capture.RESULT = {...}`` to make its ``validate`` answer something else; the
captured model and context are in the run's ``outcome.local.CAPTURED``."""

CAPTURE_GUARD = '''
from invarlock import hookimpl
from invarlock.core.api import Guard

CAPTURED = {}


class Capture(Guard):
    """Keeps a reference to the model and answers what RESULT says."""

    name = "capture"
    RESULT = {"passed": True, "action": "continue", "message": "ok"}

    def prepare(self, model, adapter, calib, policy):
        CAPTURED["model"] = model
        return {"ready": True}

    def validate(self, model, adapter, context):
        CAPTURED["context"] = context
        return self.RESULT


@hookimpl
def invarlock_register_guards(register):
    register(Capture)
'''
