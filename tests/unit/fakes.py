"""In-memory stand-ins for the Kubernetes API at the client-wrapper level."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import itertools
import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from reportjobs_gateway.ports import AlreadyExists, Read, ReportJob, Stale, StoreUnavailable
from reportjobs_kube.client import encode_body
from reportjobs_model.crd import FINALIZER
from reportjobs_model.reportjob import is_deleting
from reportjobs_model.timestamps import format_rfc3339, format_unix, unix_of
from reportjobs_model.window import EPOCH_KEY, Claim, Patch, claim_of, place_of_job
from reportjobs_operator.api_client import finalizers_patch
from reportjobs_operator.job_pod_fields import has_exited
from reportjobs_operator.manifests import WorkerTemplate
from reportjobs_operator.ports import Conflict, Obj, Refused

_uids = itertools.count(1)

WORKER = WorkerTemplate(
    image="reportjobs:dev",
    pull_policy="Never",
    cpu_request="10m",
    memory_request="32Mi",
    memory_limit="64Mi",
    uid=10001,
    backoff_limit=3,
)


class PatchRefused(Exception):
    """A JSON patch that does not apply (a failed test, a missing path): the API server's 422."""


def go_json(value: object) -> str:
    """`value` as the API server's Go encoding/json writes it (Go 1.19, the test bed's): `&`,
    `<`, `>`, U+2028, U+2029 and control characters escaped as `\\u00XX` (but `\\n`, `\\r`,
    `\\t`), other non-ASCII as UTF-8."""
    if isinstance(value, str):
        out = ['"']
        for char in value:
            code = ord(char)
            if char in _GO_SHORT:
                out.append(_GO_SHORT[char])
            elif code < 0x20 or char in "&<>" or code in (0x2028, 0x2029):
                out.append(f"\\u{code:04x}")
            else:
                out.append(char)
        return "".join(out) + '"'
    return json.dumps(value, ensure_ascii=False)


_GO_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def same_as_server(stored: object, sent: object) -> bool:
    """A JSON patch `test` as the API server's json-patch library decides it: objects member by
    member, arrays item by item, anything else byte for byte between the server's encoding of
    the stored value (`go_json`) and the test value as our client sent it (`encode_body`)."""
    if isinstance(stored, dict) and isinstance(sent, dict):
        return stored.keys() == sent.keys() and all(
            same_as_server(stored[key], sent[key]) for key in stored
        )
    if isinstance(stored, list) and isinstance(sent, list):
        return len(stored) == len(sent) and all(map(same_as_server, stored, sent))
    return go_json(stored) == encode_body(sent)


def decoded_equal(stored: object, sent: object) -> bool:
    """A `test` that compares decoded values: kinder than the API server (this fake's old
    semantics, kept to show that the checks catch what it hides)."""
    return stored == sent


def apply_json_patch(
    obj: Obj,
    patch: Patch,
    *,
    tests: bool = True,
    equal: Callable[[object, object], bool] = same_as_server,
) -> Obj:
    """A JSON patch as the API server applies it (evanphx/json-patch): atomically, on a copy; a
    `test` with a null value passes on a missing member, but not under a missing parent, and
    fails on a present one; other test values compare as `same_as_server`. `tests=False` skips
    every test (what the protocol relies on, taken away)."""
    result = copy.deepcopy(obj)
    for op in patch:
        *parents, last = op["path"].lstrip("/").split("/")
        target: Any = result
        for part in parents:
            if not isinstance(target, dict) or part not in target:
                raise PatchRefused(f"{op['op']} {op['path']}: missing parent")
            target = target[part]
        if not isinstance(target, dict):
            raise PatchRefused(f"{op['op']} {op['path']}: not an object")
        if op["op"] == "test":
            if tests and not _passes(target, last, op["value"], equal):
                raise PatchRefused(f"test {op['path']} failed")
        elif op["op"] == "add":
            target[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            if last not in target:
                raise PatchRefused(f"remove {op['path']}: missing")
            del target[last]
        else:
            raise AssertionError(f"the fake does not apply {op['op']!r}")
    return result


def _passes(
    target: dict[str, Any], member: str, value: object, equal: Callable[[object, object], bool]
) -> bool:
    if value is None or member not in target:
        return value is None and member not in target
    return equal(target[member], value)


def delete_or_mark(objects: dict[str, Obj], name: str, *, at: str = "2026-01-01T00:00:00Z") -> None:
    """A DELETE as the API server carries it out: an object with finalizers stays, marked with
    its deletionTimestamp (kept from the first DELETE); one without goes."""
    metadata = objects[name]["metadata"]
    if metadata.get("finalizers"):
        metadata.setdefault("deletionTimestamp", at)
    else:
        del objects[name]


def stamp(unix: float) -> str:
    return format_rfc3339(datetime.fromtimestamp(unix, UTC))


def new_uid() -> str:
    return f"uid-{next(_uids)}"


Pause = Callable[[str], Awaitable[None]]

LAST_DATE: contextvars.ContextVar[float] = contextvars.ContextVar("LAST_DATE")
"""The Date of the latest answer FakeStore gave to the current task (for a ServerClock)."""


async def _yield(_: str) -> None:
    await asyncio.sleep(0)


class FakeStore:
    """ReportJobs and window shards of one namespace, with a controllable server clock.

    Like the API server: the Date header has whole seconds; a write that carries a stale
    resourceVersion fails, and so does a JSON patch whose test fails; every call pauses before
    it takes effect and again before it answers (`pause`, by default one yield to the event
    loop), so concurrent submissions interleave and a test can move the clock in between, as
    admission webhooks or a slow etcd would.
    """

    def __init__(self, *, now: float, pause: Pause = _yield, accepts: bool = True) -> None:
        """`accepts`: an operator takes every ReportJob on as it is created (it gets a status
        phase); False: none does (a test plays the operator)."""
        self.now = now
        self.pause = pause
        self.accepts = accepts
        self.objects: dict[str, ReportJob] = {}
        self.created: list[str] = []
        """The name of every ReportJob created, in order (a name twice: created again)."""
        self.ever: dict[str, ReportJob] = {}
        """Every ReportJob ever created, the first of each name (deleted ones too)."""
        self.windows: dict[str, Obj] = {}
        """Window shards (ConfigMaps) by name."""
        self.claims: list[str] = []
        """Every job name a claim was ever written with, in order."""
        self.calls: list[str] = []
        self.window_history: list[Obj] = []
        """Every version of every shard, in the order they were written (what a watch sees)."""
        self._versions = itertools.count(1)

    def _date(self) -> float:
        return float(math.floor(self.now))

    async def _answer(self, obj: Obj | None) -> Read:
        date = self._date()  # stamped when the request took effect; the answer then travels
        await self.pause("answer")
        LAST_DATE.set(date)
        return Read(obj=copy.deepcopy(obj), server_time=date)

    async def get(self, name: str) -> Read:
        await self.pause("get")
        self.calls.append(f"get {name}")
        return await self._answer(self.objects.get(name))

    async def create(self, body: ReportJob) -> Read:
        stamped = self.now  # creationTimestamp is stamped before admission and the commit
        await self.pause("create")
        name = body["metadata"]["name"]
        self.calls.append(f"create {name}")
        if name in self.objects:
            raise AlreadyExists(name)
        return await self._answer(self.insert(body, created=stamped))

    def insert(self, body: ReportJob, *, created: float) -> ReportJob:
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            uid=new_uid(), creationTimestamp=stamp(math.floor(created)), resourceVersion="1"
        )
        if self.accepts:
            obj.setdefault("status", {"phase": "Pending"})
        self.objects[obj["metadata"]["name"]] = obj
        self.created.append(obj["metadata"]["name"])
        self.ever.setdefault(obj["metadata"]["name"], obj)
        return obj

    async def request_cancel(self, name: str, *, uid: str) -> ReportJob | None:
        await self.pause("patch")
        self.calls.append(f"cancel {name}")
        obj = self.objects.get(name)
        if obj is None or obj["metadata"]["uid"] != uid:
            return None
        obj["spec"]["cancel"] = True
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(obj)

    async def list(self, *, label_selector: str) -> list[ReportJob]:
        key, _, value = label_selector.partition("=")
        return [
            copy.deepcopy(obj)
            for obj in self.objects.values()
            if obj["metadata"].get("labels", {}).get(key) == value
        ]

    async def get_window(self, name: str) -> Read:
        await self.pause("get_window")
        self.calls.append(f"get_window {name}")
        return await self._answer(self.windows.get(name))

    async def create_window(self, body: Obj) -> Obj:
        await self.pause("create_window")
        name = body["metadata"]["name"]
        self.calls.append(f"create_window {name}")
        if name in self.windows:
            raise AlreadyExists(name)
        written = self._store_window(body)
        return (await self._answer(written)).obj or {}

    async def replace_window(self, body: Obj) -> Obj:
        await self.pause("replace_window")
        name = body["metadata"]["name"]
        self.calls.append(f"replace_window {name}")
        current = self.windows.get(name)
        if current is None or self._stale(body, current):
            raise Stale(name)
        written = self._store_window(body)
        return (await self._answer(written)).obj or {}

    def _stale(self, body: Obj, current: Obj) -> bool:
        """A replace carrying another resourceVersion; one carrying none is unconditional (a
        ConfigMap allows that)."""
        version = body["metadata"].get("resourceVersion")
        return version is not None and version != current["metadata"]["resourceVersion"]

    async def patch_window(self, name: str, patch: Patch, *, based_on: str) -> Obj:
        await self.pause("patch_window")
        self.calls.append(f"patch_window {name}")
        current = self.windows.get(name)
        if current is None:
            raise Stale(name)
        try:
            patched = self._patched(current, patch)
        except PatchRefused as refused:
            raise Stale(name) from refused
        written = self._store_window(patched)
        return (await self._answer(written)).obj or {}

    def _patched(self, current: Obj, patch: Patch) -> Obj:
        return apply_json_patch(current, patch)

    def _store_window(self, body: Obj) -> Obj:
        shard = copy.deepcopy(body)
        current = self.windows.get(shard["metadata"]["name"])
        shard["metadata"]["uid"] = new_uid() if current is None else current["metadata"]["uid"]
        shard["metadata"]["resourceVersion"] = str(next(self._versions))
        before = (self.windows.get(shard["metadata"]["name"]) or {}).get("data") or {}
        for key, entry in (shard.get("data") or {}).items():
            claim = claim_of(entry) if key != EPOCH_KEY and before.get(key) != entry else None
            if claim is not None:
                self.claims.append(claim.job_name)
        self.windows[shard["metadata"]["name"]] = shard
        self.window_history.append(copy.deepcopy(shard))
        return shard

    # WindowApi (the operator's side), so the operator's sweep runs against the same state.
    async def list_window_shards(self) -> tuple[list[Obj], float]:
        await self.pause("list_window_shards")
        shards = copy.deepcopy(list(self.windows.values()))
        return shards, (await self._answer(None)).server_time

    async def replace_window_shard(self, *, body: Obj) -> None:
        try:
            await self.replace_window(body)
        except Stale as stale:
            raise Conflict(str(stale)) from stale

    async def patch_window_shard(self, *, name: str, patch: Patch) -> None:
        try:
            await self.patch_window(name, patch, based_on="")
        except Stale as stale:
            raise Conflict(str(stale)) from stale

    async def get_window_shard(self, *, name: str) -> Obj | None:
        return (await self.get_window(name)).obj

    async def create_reportjob(self, *, body: Obj) -> Obj:
        try:
            created = (await self.create(body)).obj
        except AlreadyExists as exists:
            raise Conflict(str(exists)) from exists
        assert created is not None
        return created

    async def ping(self) -> None:
        return None


class DownStore(FakeStore):
    """Every call fails as if the API server were unreachable."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__(now=0)
        self.error = error or StoreUnavailable("Kubernetes API unreachable: ClientConnectorError")

    async def get(self, name: str) -> Read:
        raise self.error

    async def create(self, body: ReportJob) -> Read:
        raise self.error

    async def get_window(self, name: str) -> Read:
        raise self.error

    async def list(self, *, label_selector: str) -> list[ReportJob]:
        raise self.error

    async def ping(self) -> None:
        raise self.error


class FakeOperatorApi:
    """ReportJobs, Jobs and pods of one namespace, with optimistic status writes.

    `calls` records every request the operator makes (its watches aside)."""

    def __init__(self) -> None:
        self.reportjobs: dict[str, Obj] = {}
        self.jobs: dict[str, Obj] = {}
        self.pods: list[Obj] = []
        self.calls: list[str] = []
        self.events: dict[str, Obj] = {}
        self.status_conflicts = 0
        self.refusing: str | None = None
        """Why a create of a Job is refused (a quota, a policy), if it is."""
        self.windows: dict[str, Obj] = {}
        """Window shards: the claims of the ReportJobs added (`add_reportjob`)."""
        self._versions = itertools.count(100)

    def add_reportjob(self, rj: Obj, *, claimed: bool = True) -> Obj:
        """A ReportJob, and (`claimed`) the claim that names it in its shard."""
        rj = copy.deepcopy(rj)
        rj["metadata"].setdefault("uid", new_uid())
        rj["metadata"].setdefault("resourceVersion", str(next(self._versions)))
        rj["metadata"].setdefault("generation", 1)
        name = rj["metadata"]["name"]
        self.reportjobs[name] = rj
        if claimed:
            shard, key = place_of_job(name)
            claim = Claim(
                job_name=name,
                accepted_at=int(unix_of(rj["spec"]["acceptedAt"])),
                window_seconds=rj["spec"]["windowSeconds"],
                timeout_seconds=rj["spec"]["timeoutSeconds"],
                object_id=rj["spec"]["objectId"],
            )
            self.windows.setdefault(shard, {"metadata": {"name": shard}, "data": {}})
            self.windows[shard]["data"][key] = claim.to_entry()
        return rj

    async def get_window_shard(self, *, name: str) -> Obj | None:
        self.calls.append(f"get_window_shard {name}")
        return copy.deepcopy(self.windows.get(name))

    def add_job(self, job: Obj) -> Obj:
        job = copy.deepcopy(job)
        job["kind"] = "Job"
        job["metadata"].setdefault("uid", new_uid())
        job["metadata"]["resourceVersion"] = str(next(self._versions))
        job.setdefault("status", {})
        self.jobs[job["metadata"]["name"]] = job
        return job

    async def get_reportjob(self, *, name: str) -> Obj | None:
        self.calls.append(f"get_reportjob {name}")
        return copy.deepcopy(self.reportjobs.get(name))

    async def create_reportjob(self, *, body: Obj) -> Obj:
        """As the API server: 409 while one of that name exists, a Terminating one too."""
        self.calls.append(f"create_reportjob {body['metadata']['name']}")
        if body["metadata"]["name"] in self.reportjobs:
            raise Conflict("exists")
        return copy.deepcopy(self.add_reportjob(body, claimed=False))

    async def replace_reportjob_status(self, *, body: Obj) -> Obj:
        await asyncio.sleep(0)
        name = body["metadata"]["name"]
        self.calls.append(f"replace_status {name}")
        current = self.reportjobs[name]
        if self.status_conflicts > 0:
            self.status_conflicts -= 1
            current["metadata"]["resourceVersion"] = str(next(self._versions))
            raise Conflict("injected")
        if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise Conflict("stale resourceVersion")
        current["status"] = copy.deepcopy(body["status"])
        current["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(current)

    async def delete_reportjob(
        self, *, name: str, uid: str, resource_version: str | None = None
    ) -> None:
        self.calls.append(f"delete_reportjob {name}")
        current = self.reportjobs.get(name)
        if current is None or current["metadata"]["uid"] != uid:
            return
        if resource_version not in (None, current["metadata"]["resourceVersion"]):
            return  # 409: a precondition failed (a no-op for the operator)
        delete_or_mark(self.reportjobs, name)

    async def set_reportjob_finalizers(
        self, *, name: str, uid: str, before: list[str], after: list[str]
    ) -> Obj:
        self.calls.append(f"set_finalizers {name} {after}")
        current = self.reportjobs.get(name)
        if current is None:
            raise Conflict("gone")
        patch = finalizers_patch(uid=uid, before=before, after=after)
        try:
            patched = apply_json_patch(current, patch)
        except PatchRefused as refused:
            raise Conflict(str(refused)) from refused
        if is_deleting(current) and not set(after) <= set(before):
            raise Conflict("422: no new finalizers can be added if the object is being deleted")
        patched["metadata"]["resourceVersion"] = str(next(self._versions))
        self.reportjobs[name] = patched
        if is_deleting(patched) and not patched["metadata"]["finalizers"]:
            del self.reportjobs[name]
        return copy.deepcopy(patched)

    async def get_job(self, *, name: str) -> Obj | None:
        self.calls.append(f"get_job {name}")
        return copy.deepcopy(self.jobs.get(name))

    async def create_job(self, *, body: Obj) -> Obj:
        await asyncio.sleep(0)
        name = body["metadata"]["name"]
        self.calls.append(f"create_job {name}")
        if self.refusing is not None:
            raise Refused(self.refusing)
        if name in self.jobs:
            raise Conflict("exists")
        body = {**body, "metadata": {**body["metadata"], "creationTimestamp": stamp(0)}}
        return copy.deepcopy(self.add_job(body))

    async def delete_job(self, *, name: str, uid: str) -> None:
        self.calls.append(f"delete_job {name}")
        if name in self.jobs and self.jobs[name]["metadata"]["uid"] == uid:
            del self.jobs[name]

    async def stop_job(self, *, name: str, uid: str) -> Obj:
        self.calls.append(f"stop_job {name}")
        job = self.jobs.get(name)
        if job is None or job["metadata"]["uid"] != uid:
            raise Conflict("gone")
        job.setdefault("spec", {})["activeDeadlineSeconds"] = 1
        job["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(job)

    async def create_event(self, *, body: Obj) -> None:
        """Events are kept apart from `calls` (the request budget counts the reconcile's)."""
        name = body["metadata"]["name"]
        if name in self.events:
            raise Conflict("exists")
        self.events[name] = copy.deepcopy(body)

    async def delete_pods_of(self, *, reportjob: str, exited: bool) -> None:
        """Exited pods go at once; the others are marked terminating (the kubelet's part)."""
        self.calls.append(f"delete_pods_of {reportjob}" + (" exited" if exited else ""))
        kept = []
        for pod in self.pods:
            if pod["metadata"]["labels"].get("reportjobs.io/reportjob") != reportjob:
                kept.append(pod)
            elif not exited:
                pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                kept.append(pod)
            elif not has_exited(pod):
                kept.append(pod)
        self.pods = kept


class FakeCache:
    """The index as the watches would feed it: `sync()` delivers the API's state (the events),
    `remember`/`forget` are the operator's own write-through."""

    def __init__(self, api: FakeOperatorApi) -> None:
        self.api = api
        self.reportjobs: dict[str, Obj] = {}
        self.jobs: dict[str, Obj] = {}
        self.pods: list[Obj] = []
        self.sync()

    def sync(self) -> None:
        self.reportjobs = copy.deepcopy(self.api.reportjobs)
        self.jobs = copy.deepcopy(self.api.jobs)
        self.pods = copy.deepcopy(self.api.pods)

    def reportjob(self, name: str) -> Obj | None:
        return copy.deepcopy(self.reportjobs.get(name))

    def job(self, name: str) -> Obj | None:
        return copy.deepcopy(self.jobs.get(name))

    def pods_of(self, reportjob: str) -> list[Obj]:
        return [
            copy.deepcopy(pod)
            for pod in self.pods
            if pod["metadata"]["labels"].get("reportjobs.io/reportjob") == reportjob
        ]

    def _kind(self, obj: Obj) -> dict[str, Obj]:
        return self.jobs if obj.get("kind") == "Job" else self.reportjobs

    def remember(self, obj: Obj) -> None:
        self._kind(obj)[obj["metadata"]["name"]] = copy.deepcopy(obj)

    def forget(self, obj: Obj) -> None:
        if obj.get("kind") == "Pod":
            name = obj["metadata"]["name"]
            self.pods = [pod for pod in self.pods if pod["metadata"]["name"] != name]
            return
        self._kind(obj).pop(obj["metadata"]["name"], None)


class FakeLeaseApi:
    def __init__(self) -> None:
        self.leases: dict[str, Obj] = {}
        self.failing = False
        self._versions = itertools.count(1)

    def _check(self) -> None:
        if self.failing:
            raise OSError("API server unreachable")

    async def list_leases(self, *, label_selector: str) -> list[Obj]:
        self._check()
        key, _, value = label_selector.partition("=")
        return [
            copy.deepcopy(lease)
            for lease in self.leases.values()
            if lease["metadata"].get("labels", {}).get(key) == value
        ]

    async def delete_lease(self, *, name: str, uid: str) -> None:
        self._check()
        if name in self.leases and self.leases[name]["metadata"].get("uid") == uid:
            del self.leases[name]

    async def create_lease(self, *, body: Obj) -> Obj:
        self._check()
        name = body["metadata"]["name"]
        if name in self.leases:
            raise Conflict("exists")
        return self._store(body)

    async def replace_lease(self, *, body: Obj) -> Obj:
        self._check()
        current = self.leases[body["metadata"]["name"]]
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict("stale")
        return self._store(body)

    def _store(self, body: Obj) -> Obj:
        lease = copy.deepcopy(body)
        lease["metadata"].setdefault("uid", new_uid())
        lease["metadata"]["resourceVersion"] = str(next(self._versions))
        self.leases[lease["metadata"]["name"]] = lease
        return copy.deepcopy(lease)


def reportjob(
    *,
    name: str = "rj-0123456789abcdef01234567-5",
    object_id: str = "invoice-42",
    created: float = 5 * 300 + 10,
    window: int = 300,
    timeout: int = 60,
    status: dict[str, Any] | None = None,
    finalizers: tuple[str, ...] = (FINALIZER,),
) -> Obj:
    """A ReportJob as the API server returns it (by default with the finalizer its creator
    gives it; none: one of before)."""
    return {
        "apiVersion": "reportjobs.io/v1alpha1",
        "kind": "ReportJob",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": new_uid(),
            "resourceVersion": "1",
            "generation": 1,
            "creationTimestamp": stamp(created),
            "labels": {"app.kubernetes.io/managed-by": "reportjobs-gateway"},
            **({"finalizers": list(finalizers)} if finalizers else {}),
        },
        "spec": {
            "objectId": object_id,
            "timeoutSeconds": timeout,
            "windowSeconds": window,
            "acceptedAt": format_unix(created),
        },
        **({"status": status} if status is not None else {}),
    }
