"""Every manifest the project produces, proven against Kubernetes 1.29-1.35 without a cluster of
those versions (issue 21, item 5; behaviour is proven on the 1.20.2 test bed):

- the Helm chart, rendered by Helm's Go SDK with its defaults and with value sets that switch its
  optional parts on and off (VALUE_SETS);
- the bodies the gateway and the operator send, made by their own code: the gateway's ReportJobs
  and window shards (ConfigMaps, as created, patched and replaced), and what the operator sends
  through a ReportJob's life (its Job, Events and status writes, for each outcome) and through
  its shard Leases' rounds; with object ids and callbacks at their limits (markup, emoji,
  control characters, 256 characters, a 2,048-character URL);
- the CRD, and every ReportJob body against the CRD's own schema.

Built-in kinds are checked against kubernetes-validate's strict schemas of each version; every
object against the API server's naming rules; every pod (the chart's Deployments, its `helm
test` pod and the worker Jobs) against the Pod Security Standards' restricted profile. The
negative controls at the end show that each of these checks can fail.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import kubernetes_validate
import pytest

from reportjobs_model.reportjob import build_reportjob, with_cancel
from reportjobs_model.timestamps import format_rfc3339
from reportjobs_model.window import (
    EPOCH_KEY,
    Claim,
    claim_write,
    created_shard,
    entry_key,
    removal_write,
    shard_name,
)
from reportjobs_operator.api_client import finalizers_patch
from reportjobs_operator.events import build_event
from reportjobs_operator.leases import Fence, LeaseTerms
from reportjobs_operator.main import policy_of
from reportjobs_operator.manifests import WorkerTemplate
from reportjobs_operator.notifications import RetryPolicy, after, attempt_of
from reportjobs_operator.reconcile import Policy, Reconciler
from reportjobs_operator.settings import OperatorConfig
from reportjobs_operator.sharding import ShardLeases, ShardOwner
from tests.unit.fakes import FakeCache, FakeLeaseApi, FakeOperatorApi, apply_json_patch
from tests.unit.kubernetes_schemas import (
    CRD_FILES,
    VERSIONS,
    Obj,
    Rendered,
    chart_crds,
    crd_errors,
    load_yaml,
    naming_errors,
    object_meta_errors,
    render_chart,
    schema_errors,
    schemas_read_once,
    strict_crd_schema,
    structural_errors,
)
from tests.unit.pod_security import CONTROLS, Control, PodView, pod_of, violations

NOW: Final = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NAMESPACE: Final = "reportjobs"


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    with schemas_read_once():
        yield


# -- the chart's value sets ----------------------------------------------------------------------

EVERYTHING_ON: Final[Obj] = {
    "image": {
        "repository": "registry.example.com:5000/team/reportjobs",
        "tag": "1.4.2",
        "pullPolicy": "Always",
    },
    "imagePullSecrets": [{"name": "regcred"}],
    "gateway": {
        "replicas": 5,
        "apiTimeoutSeconds": 2.5,
        "maxWaitSeconds": 30,
        "resources": {"requests": {"cpu": 0.5, "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        "podAnnotations": {"example.com/team": "reports"},
        "serviceAccount": {
            "create": True,
            "name": "reports-api",
            "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/rj"},
        },
    },
    "operator": {
        "replicas": 3,
        "shards": 256,
        "workers": 64,
        "resyncSeconds": 60,
        "leaseDurationSeconds": 30,
        "podAnnotations": {"example.com/team": "reports"},
    },
    "worker": {
        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}},
        "backoffLimit": 0,
        "serviceAccount": {"create": True, "name": "reports-worker", "annotations": {}},
    },
    "job": {
        "sleepMinSeconds": 1,
        "sleepMaxSeconds": 5,
        "timeoutSeconds": 30,
        "maxTimeoutSeconds": 3600,
        "startupAllowanceSeconds": 600,
        "startDeadlineSeconds": 900,
    },
    "notifications": {
        "secretName": "reports-signing",
        "allowedCIDRs": ["10.20.0.5/32"],
        "allowedHosts": ["hooks.internal.example"],
        "blockedCIDRs": ["203.0.113.0/24", "2001:db8::/32"],
    },
    "service": {
        "type": "LoadBalancer",
        "port": 80,
        "nodePort": 31080,
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
    },
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "reports", "effect": "NoSchedule"}
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                        ]
                    }
                ]
            }
        }
    },
    "metrics": {
        "scrapeAnnotations": True,
        "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}},
    },
}
"""Every optional part on: a private registry, several replicas, a LoadBalancer with a fixed
node port, a given signing Secret, a start deadline, CIDR and host policies, scheduling
constraints (with the default spread added), the ServiceMonitor and its Service."""

MINIMAL: Final[Obj] = {
    "fullnameOverride": "rj",
    "image": {"tag": ""},
    "gateway": {
        "replicas": 1,
        "spreadAcrossNodes": False,
        "serviceAccount": {"create": False, "name": "reports-api"},
    },
    "operator": {
        "replicas": 1,
        "shards": 1,
        "spreadAcrossNodes": False,
        "serviceAccount": {"create": False, "name": ""},
    },
    "worker": {"serviceAccount": {"create": False, "name": ""}},
    "service": {"type": "ClusterIP", "nodePort": None},
    "metrics": {"scrapeAnnotations": False},
    "affinity": {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {}}}
            ]
        }
    },
}
"""Optional parts off: one replica each, no spread, no scrape annotations, ServiceAccounts not
created (given ones, and "default"), a ClusterIP Service, the image tag from appVersion, an
affinity of the user's own that replaces the spread."""

ODD_STRINGS: Final[Obj] = {
    "nameOverride": "reports",
    "image": {"tag": 2},
    "gateway": {
        "podAnnotations": {
            "example.com/markup": 'a "quoted" & <angled> \\back\\slash\\ `tick` {{ .Values }}',
            "example.com/emoji": "🚀 résumé 日本語\tand a\nsecond line",
            "example.com/empty": "",
        }
    },
    "operator": {
        "podAnnotations": {
            "example.com/number": "0123",
            "example.com/bool": "yes",
            "example.com/null": "null",
            "example.com/float": "1e3",
            "example.com/yaml": "key: value # not a comment",
        }
    },
    "worker": {"resources": {"requests": {"cpu": 0.25, "memory": "48Mi"}}},
    "service": {"type": "NodePort", "nodePort": "", "annotations": {"example.com/x": "a\nb\n"}},
    "notifications": {"allowedHosts": ["hooks.example.com", "xn--mlaut-jva.example"]},
    "tests": {"objectId": "🚀 & < > \" \\ ' " + "x" * 240},
}
"""Strings that YAML or a template could mangle (quotes, backslashes, emoji, newlines, strings
that read as numbers, booleans or null), a numeric image tag and CPU, a NodePort that
Kubernetes chooses, a 256-character `helm test` object id."""

VALUE_SETS: Final[dict[str, Obj]] = {
    "defaults": {},
    "everything-on": EVERYTHING_ON,
    "minimal": MINIMAL,
    "odd-strings": ODD_STRINGS,
}

NOT_IN_KUBERNETES: Final = frozenset({("monitoring.coreos.com/v1", "ServiceMonitor")})
"""Kinds of other projects' CRDs (the Prometheus Operator's): only their metadata is checked."""


@functools.cache
def _chart(value_set: str) -> tuple[Rendered, ...]:
    return tuple(render_chart(VALUE_SETS[value_set], namespace=NAMESPACE))


def _kinds(value_set: str) -> dict[str, list[Obj]]:
    kinds: dict[str, list[Obj]] = {}
    for rendered in _chart(value_set):
        kinds.setdefault(rendered.manifest["kind"], []).append(rendered.manifest)
    return kinds


def _deployment(value_set: str, component: str) -> Obj:
    (deployment,) = [
        d
        for d in _kinds(value_set)["Deployment"]
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return deployment


# -- the operator as the chart configures it -----------------------------------------------------

POD_NAME: Final = "reportjobs-operator-5d8c7b9f4-x7k2q"


@functools.cache
def _operator_config(value_set: str) -> OperatorConfig:
    """The operator's settings read from the environment the chart gives its container."""
    (container,) = _deployment(value_set, "operator")["spec"]["template"]["spec"]["containers"]
    with pytest.MonkeyPatch.context() as env:
        for variable in container["env"]:
            if "value" in variable:
                env.setenv(variable["name"], variable["value"])
        env.setenv("POD_NAME", POD_NAME)  # a fieldRef
        env.setenv("REPORTJOBS_WEBHOOK_SECRET", "whsec_" + "A" * 32)  # a secretKeyRef
        return OperatorConfig()


def _worker(value_set: str) -> WorkerTemplate:
    return policy_of(_operator_config(value_set)).worker


# -- what the gateway sends ----------------------------------------------------------------------

OBJECT_IDS: Final = {
    "plain": "invoice-42",
    "markup": "& < > \" \\ ' `x` ${y} {{ z }} %s </script>",
    "emoji": "🚀📄 résumé 日本語 👩‍👩‍👧 \u202eevil",
    "controls": "tab\t newline\n nul\x00 del\x7f \u2028\u2029 \ufeff",
    "longest": "x" * 256,
    "longest-emoji": "😀" * 256,
}
"""Object ids at the edges of what the gateway accepts (1-256 characters, any Unicode)."""

CALLBACK_PREFIX: Final = "https://hooks.example.com/reports?a=1&b=%3C%3E#"
LONGEST_CALLBACK: Final = CALLBACK_PREFIX + "f" * (2048 - len(CALLBACK_PREFIX))


def _uid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def _stored(body: Obj, *, version: str = "4242") -> Obj:
    """A body as the API server returns it: with the fields it sets."""
    stored = copy.deepcopy(body)
    metadata = stored["metadata"]
    metadata.update(
        namespace=NAMESPACE,
        uid=_uid(metadata["name"]),
        resourceVersion=version,
        creationTimestamp=format_rfc3339(NOW - timedelta(seconds=100)),
    )
    if stored["kind"] == "ReportJob":
        metadata["generation"] = 1
    return stored


def _claim(object_id: str, *, callback: bool, seconds_ago: int = 100) -> Claim:
    return Claim.new(
        object_id=object_id,
        now=(NOW - timedelta(seconds=seconds_ago)).timestamp(),
        window_seconds=300,
        timeout_seconds=60,
        callback_url=LONGEST_CALLBACK if callback else None,
    )


@functools.cache
def _gateway_bodies() -> tuple[Obj, ...]:
    """What the gateway writes for each object id: its ReportJob (as created, and as created
    cancelled for a job known only by its claim), and its window shard as created, patched
    with another object's claim, patched to remove a claim, and replaced (no epoch yet)."""
    bodies: list[Obj] = []
    other = _claim("another object", callback=False, seconds_ago=400)
    for index, object_id in enumerate(OBJECT_IDS.values()):
        claim = _claim(object_id, callback=index % 2 == 1)
        reportjob = build_reportjob(object_id=object_id, claim=claim)
        bodies += [reportjob, with_cancel(reportjob)]
        name, key = shard_name(object_id), entry_key(object_id)
        created = created_shard(name=name, key=key, entry=claim.to_entry())
        shard = _stored(created)
        bodies.append(created)
        write = claim_write(shard, key=entry_key("another object"), entry=other.to_entry())
        assert write.patch is not None
        both = apply_json_patch(shard, write.patch)
        bodies.append(both)
        removal = removal_write(both, keys=[entry_key("another object")])
        assert removal.patch is not None
        bodies.append(apply_json_patch(both, removal.patch))
        without_epoch = {**shard, "data": {key: claim.to_entry()}}
        replace = claim_write(
            without_epoch, key=entry_key("another object"), entry=other.to_entry()
        )
        assert replace.replacement is not None
        bodies.append(replace.replacement)
    return tuple(bodies)


# -- what the operator sends ---------------------------------------------------------------------


class _RecordingApi(FakeOperatorApi):
    """The fake API server, keeping every body the operator sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Obj] = []

    async def create_job(self, *, body: Obj) -> Obj:
        self.sent.append(copy.deepcopy(body))
        return await super().create_job(body=body)

    async def replace_reportjob_status(self, *, body: Obj) -> Obj:
        self.sent.append(copy.deepcopy(body))
        return await super().replace_reportjob_status(body=body)

    async def create_event(self, *, body: Obj) -> None:
        self.sent.append(copy.deepcopy(body))
        await super().create_event(body=body)

    async def set_reportjob_finalizers(
        self, *, name: str, uid: str, before: list[str], after: list[str]
    ) -> Obj:
        patch = finalizers_patch(uid=uid, before=before, after=after)
        self.sent.append(apply_json_patch(self.reportjobs[name], patch))
        return await super().set_reportjob_finalizers(
            name=name, uid=uid, before=before, after=after
        )


def _worker_pod(job: Obj, state: Obj, phase: str) -> Obj:
    name = job["metadata"]["name"]
    return {
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-x7k2q",
            "labels": dict(job["spec"]["template"]["metadata"]["labels"]),
            "ownerReferences": [{"uid": job["metadata"]["uid"], "controller": True}],
        },
        "status": {"phase": phase, "containerStatuses": [{"name": "worker", "state": state}]},
    }


STARTED: Final = format_rfc3339(NOW - timedelta(seconds=60))
OUTCOMES: Final = ("Succeeded", "TimedOut", "Failed", "Cancelled", "Deleted")


async def _life(*, reportjob: Obj, worker: WorkerTemplate, outcome: str) -> list[Obj]:
    """A ReportJob reconciled from its creation to `outcome`: what the operator sent."""
    api = _RecordingApi()
    name = api.add_reportjob(reportjob)["metadata"]["name"]
    cache = FakeCache(api)
    reconciler = Reconciler(
        api=api,
        cache=cache,
        policy=Policy(
            sleep_min_seconds=15, sleep_max_seconds=40, retention_seconds=60, worker=worker
        ),
        released=lambda _: True,
        draw=lambda _low, high: high,
        clock=lambda: NOW,
        reporter=POD_NAME,
    )

    async def step() -> None:
        cache.sync()
        await reconciler.reconcile(name=name)

    await step()  # Accepted, its Job, JobCreated, Pending
    job = api.jobs[name]
    api.pods = [_worker_pod(job, {"running": {"startedAt": STARTED}}, "Running")]
    await step()  # Started, Running
    report = {"sleptSeconds": 40, "timeoutSeconds": 60, "ranSeconds": 40.01}
    terminated = {"exitCode": 0, "message": json.dumps(report), "startedAt": STARTED}
    condition = {"status": "True", "lastTransitionTime": format_rfc3339(NOW)}
    if outcome == "Succeeded":
        api.pods = [_worker_pod(job, {"terminated": terminated}, "Succeeded")]
        job["status"] = {"conditions": [{**condition, "type": "Complete"}]}
    elif outcome in ("TimedOut", "Failed"):
        reason = "DeadlineExceeded" if outcome == "TimedOut" else "BackoffLimitExceeded"
        failed = {**condition, "type": "Failed", "reason": reason, "message": "Job failed"}
        job["status"] = {"conditions": [failed]}
    elif outcome == "Cancelled":
        api.reportjobs[name] = with_cancel(api.reportjobs[name])
    else:  # deleted by hand: held by its finalizer until its claim is gone
        api.reportjobs[name]["metadata"]["deletionTimestamp"] = format_rfc3339(NOW)
    await step()  # the outcome, its Event; the Job stopped, the pods deleted, the finalizer
    return api.sent


def _notified(reportjob: Obj) -> list[Obj]:
    """The status writes and Events of deliveries (notifications.after, deliveries.py)."""
    bodies = []
    policy = RetryPolicy()
    pending = reportjob["status"]["notification"]
    answers = [
        (attempt_of(status_code=204), "NotificationDelivered", "Delivered the outcome"),
        (attempt_of(status_code=503), None, ""),
        (attempt_of(status_code=410), "NotificationFailed", "Gave up delivering: answered 410"),
        (attempt_of(status_code=None, error="timed out after 10 s"), None, ""),
    ]
    for attempt, reason, message in answers:
        notification = after(pending, attempt, now=NOW, policy=policy, jitter=lambda: 0.5)
        status = {**reportjob["status"], "notification": notification}
        bodies.append({**reportjob, "status": status})
        if reason is not None:
            event = build_event(
                reportjob=reportjob, reason=reason, message=message, now=NOW, reporter=POD_NAME
            )
            bodies.append(event)
    return bodies


class _Work:
    def start(self, shard: int, fence: Fence) -> None:
        return None

    async def stop(self, shard: int) -> None:
        return None


class _RecordingLeases(FakeLeaseApi):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Obj] = []

    async def create_lease(self, *, body: Obj) -> Obj:
        self.sent.append(copy.deepcopy(body))
        return await super().create_lease(body=body)

    async def replace_lease(self, *, body: Obj) -> Obj:
        self.sent.append(copy.deepcopy(body))
        return await super().replace_lease(body=body)


async def _lease_rounds(config: OperatorConfig) -> list[Obj]:
    """A replica's Lease writes as the chart configures it: two rounds (created, renewed), then
    the release of all on stopping; the member Lease and the first and last shards' kept."""
    api = _RecordingLeases()
    leases = ShardLeases(namespace=config.namespace, prefix=config.lease_name, shards=config.shards)
    owner = ShardOwner(
        api=api,
        leases=leases,
        terms=LeaseTerms(identity=config.pod_name, duration_seconds=config.lease_duration_seconds),
        work=_Work(),
        clock=lambda: NOW,
    )
    await owner.round()
    await owner.round()
    await owner.release_all()
    kept = {
        leases.member_lease(config.pod_name),
        leases.shard_lease(0),
        leases.shard_lease(config.shards - 1),
    }
    return [body for body in api.sent if body["metadata"]["name"] in kept]


@functools.cache
def _operator_bodies() -> tuple[Obj, ...]:
    """What the operator sends: for every value set (its worker Job, its Leases), a life and its
    Lease rounds; for every object id, a life to each outcome (with a callback on every other one)
    and the deliveries of its notification."""
    bodies: list[Obj] = []

    async def collect() -> None:
        for value_set in VALUE_SETS:
            bodies.extend(await _lease_rounds(_operator_config(value_set)))
            reportjob = _stored(build_reportjob(object_id="a", claim=_claim("a", callback=True)))
            worker = _worker(value_set)
            bodies.extend(await _life(reportjob=reportjob, worker=worker, outcome="TimedOut"))
        for index, object_id in enumerate(OBJECT_IDS.values()):
            claim = _claim(object_id, callback=index % 2 == 0)
            for outcome in OUTCOMES:
                reportjob = _stored(build_reportjob(object_id=object_id, claim=claim))
                sent = await _life(reportjob=reportjob, worker=_worker("defaults"), outcome=outcome)
                bodies.extend(sent)
                notified = [b for b in sent if (b.get("status") or {}).get("notification")]
                if notified:
                    bodies.extend(_notified(notified[-1]))

    asyncio.run(collect())
    return tuple(bodies)


def _runtime_bodies() -> tuple[Obj, ...]:
    return _gateway_bodies() + _operator_bodies()


def _of_kind(kind: str) -> list[Obj]:
    return [body for body in _runtime_bodies() if body["kind"] == kind]


def _title(body: Obj) -> str:
    return f"{body['kind']} {body['metadata']['name']}"


@functools.cache
def _reportjob_schema() -> Obj:
    ((crd,),) = [load_yaml(path) for path in CRD_FILES]
    return strict_crd_schema(crd, version="v1alpha1")


# -- the chart -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_the_chart_is_valid_in_strict_mode(value_set: str, version: str) -> None:
    errors = []
    for rendered in _chart(value_set):
        manifest = rendered.manifest
        if (manifest["apiVersion"], manifest["kind"]) in NOT_IN_KUBERNETES:
            found = object_meta_errors(manifest["metadata"], version=version)
        else:
            found = schema_errors(manifest, version=version)
        errors += [f"{rendered.title}: {error}" for error in found]
    assert errors == []


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_the_charts_names_and_labels_are_accepted(value_set: str) -> None:
    errors = [
        f"{rendered.title}: {error}"
        for rendered in _chart(value_set)
        for error in naming_errors(rendered.manifest)
    ]
    assert errors == []


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_the_charts_pods_meet_the_restricted_profile(value_set: str) -> None:
    pods = {
        rendered.title: pod
        for rendered in _chart(value_set)
        if (pod := pod_of(rendered.manifest)) is not None
    }
    components = {pod.metadata["labels"]["app.kubernetes.io/component"] for pod in pods.values()}
    assert components == {"gateway", "operator", "test"}  # the `helm test` pod too
    assert {title: violations(pod) for title, pod in pods.items()} == {t: [] for t in pods}


def test_the_value_sets_switch_the_optional_parts_on_and_off() -> None:
    """So that the value sets above do render what they are there to check."""
    defaults, on, minimal, odd = (_kinds(name) for name in VALUE_SETS)
    assert sorted(defaults) == [
        "Deployment",
        "Pod",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    assert len(defaults["ServiceAccount"]) == 3
    assert defaults["Service"][0]["spec"]["ports"][0]["nodePort"] == 30080
    assert "ServiceMonitor" in on
    assert "Secret" not in on  # the signing Secret is given
    assert [s["spec"]["type"] for s in on["Service"]] == ["LoadBalancer", "ClusterIP"]
    gateway = _deployment("everything-on", "gateway")
    pod = gateway["spec"]["template"]["spec"]
    assert gateway["spec"]["replicas"] == 5
    assert set(pod["affinity"]) == {"nodeAffinity", "podAntiAffinity"}
    assert {"imagePullSecrets", "nodeSelector", "tolerations"} <= set(pod)
    assert _worker("everything-on").start_deadline_seconds == 900
    assert "ServiceAccount" not in minimal
    assert minimal["Service"][0]["spec"]["type"] == "ClusterIP"
    minimal_pod = _deployment("minimal", "gateway")["spec"]["template"]
    assert "annotations" not in minimal_pod["metadata"]
    assert set(minimal_pod["spec"]["affinity"]) == {"podAntiAffinity"}
    assert _worker("minimal").service_account == "default"
    assert "nodePort" not in odd["Service"][0]["spec"]["ports"][0]


def test_odd_strings_reach_the_cluster_as_they_were_given() -> None:
    """No string the odd value set gives is turned into a number, a boolean, null or another
    string on its way through the templates and YAML."""
    for component in ("gateway", "operator"):
        annotations = _deployment("odd-strings", component)["spec"]["template"]["metadata"]
        given = ODD_STRINGS[component]["podAnnotations"]
        assert {k: annotations["annotations"][k] for k in given} == given
    odd = _kinds("odd-strings")
    assert odd["Service"][0]["metadata"]["annotations"] == ODD_STRINGS["service"]["annotations"]
    env = {e["name"]: e.get("value") for e in odd["Pod"][0]["spec"]["containers"][0]["env"]}
    assert env["TEST_OBJECT_ID"] == ODD_STRINGS["tests"]["objectId"]
    assert _worker("odd-strings").image == "reportjobs:2"
    assert _worker("odd-strings").cpu_request == "0.25"
    config = _operator_config("odd-strings")
    assert config.callback_allowed_hosts == ODD_STRINGS["notifications"]["allowedHosts"]


# -- the bodies the gateway and the operator send ------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_the_runtime_bodies_are_valid_in_strict_mode(version: str) -> None:
    checked = [body for body in _runtime_bodies() if body["kind"] != "ReportJob"]
    assert {body["kind"] for body in checked} == {"Job", "Event", "Lease", "ConfigMap"}
    unique = {json.dumps(body, sort_keys=True): body for body in checked}.values()
    errors = [
        f"{_title(body)}: {error}"
        for body in unique
        for error in schema_errors(body, version=version)
    ]
    assert errors == []


def test_the_reportjobs_are_valid_against_the_crds_schema() -> None:
    """The CRD's own schema, made strict: kubernetes-validate does not know our kind."""
    schema = _reportjob_schema()
    reportjobs = _of_kind("ReportJob")
    phases = {(rj.get("status") or {}).get("phase") for rj in reportjobs}
    assert phases == {None, "Pending", "Running", "Succeeded", "TimedOut", "Failed", "Cancelled"}
    assert {rj["spec"]["objectId"] for rj in reportjobs} >= set(OBJECT_IDS.values())
    errors = [
        f"{_title(rj)}: {error}" for rj in reportjobs for error in crd_errors(rj, schema=schema)
    ]
    assert errors == []


@pytest.mark.parametrize("version", VERSIONS)
def test_the_reportjobs_metadata_is_valid_in_strict_mode(version: str) -> None:
    errors = [
        f"{_title(rj)}: {error}"
        for rj in _of_kind("ReportJob")
        for error in object_meta_errors(rj["metadata"], version=version)
    ]
    assert errors == []


def test_the_runtime_bodies_names_and_labels_are_accepted() -> None:
    errors = [f"{_title(b)}: {error}" for b in _runtime_bodies() for error in naming_errors(b)]
    assert errors == []


def test_the_worker_jobs_meet_the_restricted_profile() -> None:
    jobs = _of_kind("Job")
    assert len(jobs) == len(VALUE_SETS) + len(OBJECT_IDS) * len(OUTCOMES)
    found = {}
    for job in jobs:
        pod = pod_of(job)
        assert pod is not None
        found[_title(job)] = violations(pod)
    assert found == {title: [] for title in found}


# -- the CRD -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_the_crd_is_valid_in_strict_mode(version: str) -> None:
    crds = [doc for path in CRD_FILES for doc in load_yaml(path)]
    assert crds == chart_crds()  # the chart installs the same
    assert [schema_errors(crd, version=version) for crd in crds] == [[] for _ in crds]


def test_the_crd_schema_is_structural() -> None:
    for path in CRD_FILES:
        for crd in load_yaml(path):
            for served in crd["spec"]["versions"]:
                schema = served["schema"]["openAPIV3Schema"]
                assert structural_errors(schema) == [], f"{path.name} {served['name']}"


# -- negative controls: each check can fail ------------------------------------------------------


def _broken_manifests() -> dict[str, Obj]:
    """Manifests that the API server of every version refuses in strict mode."""
    deployment = copy.deepcopy(_deployment("defaults", "gateway"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    replicas = copy.deepcopy(_deployment("defaults", "gateway"))
    replicas["spec"]["replicas"] = "2"
    job = copy.deepcopy(_of_kind("Job")[0])
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["seccomp"] = {}
    lease = copy.deepcopy(_of_kind("Lease")[0])
    lease["spec"]["leaseDurationSeconds"] = "15"
    event = copy.deepcopy(_of_kind("Event")[0])
    event["involvedObject"]["objectId"] = "a"
    shard = copy.deepcopy(_of_kind("ConfigMap")[0])
    shard["data"][EPOCH_KEY] = 7
    return {
        "unknown container field": deployment,
        "replicas a string": replicas,
        "unknown securityContext field": job,
        "lease duration a string": lease,
        "unknown involvedObject field": event,
        "ConfigMap value a number": shard,
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_strict_mode_refuses_unknown_fields_and_wrong_types(version: str) -> None:
    broken = _broken_manifests()
    for case, manifest in broken.items():
        assert schema_errors(manifest, version=version) != [], case
    # Strict mode is what finds an unknown field: the lax schemas let it through.
    kubernetes_validate.validate(broken["unknown container field"], version, strict=False)
    metadata = {"name": "a", "labels": {"a": 1}}
    assert object_meta_errors(metadata, version=version) != []
    assert object_meta_errors({"name": "a", "finalizer": ["x"]}, version=version) != []


def _valid_reportjob() -> Obj:
    running = (rj for rj in _of_kind("ReportJob") if (rj.get("status") or {}).get("phase"))
    return copy.deepcopy(next(running))


def _set(path: str, value: object) -> Callable[[Obj], None]:
    def change(body: Obj) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value

    return change


CRD_REFUSES: Final[dict[str, Callable[[Obj], object]]] = {
    "an unknown spec field": _set("spec.objectID", "a"),
    "an unknown status field": _set("status.phases", "Running"),
    "an unknown condition field": _set("status.conditions.0.lastUpdateTime", "x"),
    "an object id of 257 characters": _set("spec.objectId", "x" * 257),
    "an empty object id": _set("spec.objectId", ""),
    "a timeout as a string": _set("spec.timeoutSeconds", "60"),
    "a timeout of 0": _set("spec.timeoutSeconds", 0),
    "an acceptedAt that is not RFC 3339": _set("spec.acceptedAt", "2026-03-01 12:00:00"),
    "an acceptedAt on February 30": _set("spec.acceptedAt", "2026-02-30T12:00:00Z"),
    "a phase it does not know": _set("status.phase", "Done"),
    "a pod twice in a set": _set("status.pods", ["p", "p"]),
    "a condition type twice in a map": _set(
        "status.conditions", [{"type": "A", "status": "True"}, {"type": "A", "status": "False"}]
    ),
    "a callback of 2,049 characters": _set("spec.callbackUrl", LONGEST_CALLBACK + "f"),
    "no spec": lambda body: body.pop("spec"),
}


@pytest.mark.parametrize("case", CRD_REFUSES)
def test_the_crds_schema_refuses_what_the_api_server_would(case: str) -> None:
    body = _valid_reportjob()
    assert crd_errors(body, schema=_reportjob_schema()) == []
    CRD_REFUSES[case](body)
    assert crd_errors(body, schema=_reportjob_schema()) != []


def test_the_structural_rules_can_fail() -> None:
    ((crd,),) = [load_yaml(path) for path in CRD_FILES]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    untyped = copy.deepcopy(schema)
    del untyped["properties"]["spec"]["properties"]["objectId"]["type"]
    assert structural_errors(untyped) == ["openAPIV3Schema.spec.objectId: no type"]
    loose_key = copy.deepcopy(schema)
    loose_key["properties"]["status"]["properties"]["conditions"]["items"]["required"] = []
    assert structural_errors(loose_key) == [
        "openAPIV3Schema.status.conditions: map key type is not required"
    ]


def test_the_naming_rules_can_fail() -> None:
    (job,) = _of_kind("Job")[:1]
    cases: dict[str, Callable[[Obj], None]] = {
        "upper case name": _set("metadata.name", "RJ-A"),
        "a Job name over 63": _set("metadata.name", "rj-" + "a" * 61),
        "label value with a space": _set("metadata.labels", {"a": "b c"}),
        "label value over 63": _set("metadata.labels", {"a": "b" * 64}),
        "label key with two slashes": _set("metadata.labels", {"a/b/c": "d"}),
        "annotation key with a space": _set("metadata.annotations", {"a b": "c"}),
        "a template label an emoji": _set("spec.template.metadata.labels", {"a": "🚀"}),
    }
    for case, change in cases.items():
        broken = copy.deepcopy(job)
        change(broken)
        assert naming_errors(broken) != [], case
    service = {"kind": "Service", "metadata": {"name": "1-gateway"}}
    assert naming_errors(service) != []
    shard = {"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"a/b": "c"}}
    assert naming_errors(shard) != []
    deployment = copy.deepcopy(_deployment("defaults", "gateway"))
    deployment["spec"]["selector"]["matchLabels"]["extra"] = "x"
    assert naming_errors(deployment) == [
        "the Deployment's selector does not match its template's labels"
    ]


def _pod_context(pod: Obj) -> Obj:
    context: Obj = pod["spec"]["securityContext"]
    return context


def _container(pod: Obj) -> Obj:
    container: Obj = pod["spec"]["containers"][0]
    return container


def _context(pod: Obj) -> Obj:
    context: Obj = _container(pod)["securityContext"]
    return context


def _no_seccomp(pod: Obj) -> None:
    del _pod_context(pod)["seccompProfile"], _context(pod)["seccompProfile"]


APPARMOR: Final = {"container.apparmor.security.beta.kubernetes.io/gateway": "unconfined"}
NFS: Final = {"name": "share", "nfs": {"server": "nfs.example", "path": "/"}}

PSS_BREAKS: Final[dict[str, Callable[[Obj], object]]] = {
    "baseline: HostProcess": lambda pod: _pod_context(pod).update(
        windowsOptions={"hostProcess": True}
    ),
    "baseline: Host Namespaces": lambda pod: pod["spec"].update(hostPID=True),
    "baseline: Privileged Containers": lambda pod: _context(pod).update(privileged=True),
    "baseline: Capabilities": lambda pod: _context(pod)["capabilities"].update(add=["SYS_ADMIN"]),
    "baseline: HostPath Volumes": lambda pod: pod["spec"]["volumes"].append(
        {"name": "host", "hostPath": {"path": "/"}}
    ),
    "baseline: Host Ports": lambda pod: _container(pod)["ports"][0].update(hostPort=8080),
    "baseline: AppArmor": lambda pod: pod["metadata"]["annotations"].update(APPARMOR),
    "baseline: SELinux": lambda pod: _pod_context(pod).update(seLinuxOptions={"type": "spc_t"}),
    "baseline: /proc Mount Type": lambda pod: _context(pod).update(procMount="Unmasked"),
    "baseline: Seccomp": lambda pod: _pod_context(pod).update(
        seccompProfile={"type": "Unconfined"}
    ),
    "baseline: Sysctls": lambda pod: _pod_context(pod).update(
        sysctls=[{"name": "kernel.msgmax", "value": "65536"}]
    ),
    "restricted: Volume Types": lambda pod: pod["spec"]["volumes"].append(NFS),
    "restricted: Privilege Escalation": lambda pod: _context(pod).pop("allowPrivilegeEscalation"),
    "restricted: Running as Non-root": lambda pod: _context(pod).update(runAsNonRoot=False),
    "restricted: Running as Non-root user": lambda pod: _pod_context(pod).update(runAsUser=0),
    "restricted: Seccomp": _no_seccomp,
    "restricted: Capabilities": lambda pod: _context(pod)["capabilities"].update(drop=["NET_RAW"]),
}
"""For each control, a change of the chart's gateway pod that breaks it."""


@pytest.mark.parametrize("control", CONTROLS, ids=lambda control: control.title)
def test_each_pod_security_control_can_fail(control: Control) -> None:
    pod = copy.deepcopy(_deployment("defaults", "gateway")["spec"]["template"])
    view = PodView(metadata=pod["metadata"], spec=pod["spec"])
    assert violations(view) == []
    PSS_BREAKS[control.title](pod)
    found = violations(view)
    assert any(line.startswith(f"{control.title}: ") for line in found), found


def test_init_and_ephemeral_containers_are_checked_too() -> None:
    pod = copy.deepcopy(_deployment("defaults", "gateway")["spec"]["template"])
    bare = {"name": "bare", "image": "x"}
    pod["spec"]["initContainers"] = [bare]
    pod["spec"]["ephemeralContainers"] = [{**bare, "name": "debug"}]
    found = violations(PodView(metadata=pod["metadata"], spec=pod["spec"]))
    for where in ("initContainers[bare]", "ephemeralContainers[debug]"):
        assert f"restricted: Capabilities: {where} does not drop ALL capabilities" in found
