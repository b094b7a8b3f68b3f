"""The kopf handlers are thin: they name the ReportJob to reconcile."""

import logging
from types import SimpleNamespace

import kopf

from reportjobs_operator.handlers import configure, on_owned, on_reportjob, register


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def reconcile(self, *, namespace: str, name: str) -> None:
        self.calls.append((namespace, name))


async def test_events_reconcile_the_named_reportjob() -> None:
    recorder = Recorder()
    memo = SimpleNamespace(reconciler=recorder)
    await on_reportjob(name="rj-a-1", namespace="ns", memo=memo)
    await on_owned(labels={"reportjobs.io/reportjob": "rj-b-2"}, namespace="ns", memo=memo)
    await on_owned(labels={"other": "x"}, namespace="ns", memo=memo)
    assert recorder.calls == [("ns", "rj-a-1"), ("ns", "rj-b-2")]


async def test_kopf_settings() -> None:
    settings = kopf.OperatorSettings()
    await configure(settings=settings)
    assert settings.posting.level == logging.WARNING
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)


def test_register_needs_no_finalizers() -> None:
    registry = kopf.OperatorRegistry()
    register(registry)
    watched = {
        (selector.group, selector.any_name) for selector in registry._watching.get_all_selectors()
    }
    assert watched == {("reportjobs.io", "reportjobs"), ("batch", "jobs"), ("", "pods")}
    # No timers or daemons (they make kopf put a finalizer on every object) and no
    # create/update handlers (they make kopf write its annotations).
    assert not registry._spawning.get_all_handlers()
    assert not registry._changing.get_all_handlers()
