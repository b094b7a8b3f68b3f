"""The chart installs, its pods become Ready, `helm test` passes, and RBAC is least-privilege."""

from __future__ import annotations

import json
import subprocess
import urllib.request

from kubernetes import client

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.kube import Cluster, kubectl_binary
from tests.e2e.support.polling import wait_until
from tests.e2e.support.release import helmctl


def can_i(
    cluster: Cluster,
    namespace: str,
    account: str,
    verb: str,
    resource: str,
    group: str = "",
    name: str | None = None,
) -> bool:
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{namespace}:{account}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb=verb, resource=resource, group=group, name=name
            ),
        )
    )
    answer = client.AuthorizationV1Api(cluster.api).create_subject_access_review(review)
    return bool(answer.status.allowed)


def test_chart_installs_and_pods_become_ready(
    deploy_release: DeployRelease, cluster: Cluster, kubeconfig: str
) -> None:
    release = deploy_release(gateway={"replicas": 2}, operator={"replicas": 2})

    assert len(cluster.ready_pods(release.namespace, "gateway")) == 2
    assert len(cluster.ready_pods(release.namespace, "operator")) == 2
    for pod in cluster.pods(release.namespace, "gateway") + cluster.pods(
        release.namespace, "operator"
    ):
        context = pod.spec.containers[0].security_context
        assert context.read_only_root_filesystem is True, pod.metadata.name
        assert (pod.spec.security_context.run_as_non_root or context.run_as_non_root) is True
    # `helm test` runs the chart's test pod: a POST and a GET through the gateway Service.
    helmctl("test", kubeconfig=kubeconfig, namespace=release.namespace, timeout=180)


def test_rbac_is_least_privilege(deploy_release: DeployRelease, cluster: Cluster) -> None:
    namespace = deploy_release().namespace
    accounts = {
        sa.metadata.name for sa in cluster.core.list_namespaced_service_account(namespace).items
    }
    gateway = next(a for a in accounts if a.endswith("-gateway"))
    operator = next(a for a in accounts if a.endswith("-operator"))

    assert can_i(cluster, namespace, gateway, "create", "reportjobs", "reportjobs.io")
    assert can_i(cluster, namespace, gateway, "patch", "reportjobs", "reportjobs.io")  # cancel
    assert not can_i(cluster, namespace, gateway, "update", "reportjobs", "reportjobs.io")
    assert not can_i(cluster, namespace, gateway, "create", "jobs", "batch")
    assert not can_i(cluster, namespace, gateway, "update", "reportjobs/status", "reportjobs.io")
    assert not can_i(cluster, namespace, gateway, "get", "secrets")
    assert can_i(cluster, namespace, operator, "create", "jobs", "batch")
    assert can_i(cluster, namespace, operator, "update", "reportjobs/status", "reportjobs.io")
    # It creates the ReportJob of a claim found without one (its gateway died after the 201).
    assert can_i(cluster, namespace, operator, "create", "reportjobs", "reportjobs.io")
    assert not can_i(cluster, namespace, operator, "update", "reportjobs", "reportjobs.io")
    # It patches a ReportJob's claim finalizer (docs/design.md, "Deleting a job").
    assert can_i(cluster, namespace, operator, "patch", "reportjobs", "reportjobs.io")
    assert not can_i(cluster, namespace, operator, "get", "secrets")
    assert not can_i(cluster, "default", operator, "create", "jobs", "batch")
    # The dedup window shards: the gateway reads and replaces them by name only, and deletes
    # neither them nor ReportJobs; the operator prunes them by name.
    shard, other = "reportjobs-windows-7f", "some-other-config"
    for verb in ("update", "patch"):
        assert can_i(cluster, namespace, gateway, verb, "configmaps", name=shard)
        assert not can_i(cluster, namespace, gateway, verb, "configmaps", name=other)
    assert not can_i(cluster, namespace, gateway, "get", "configmaps", name=other)
    # The gateway's caches: list and watch of the ReportJobs and the ConfigMaps (RBAC cannot
    # limit a list or a watch to the shards' label or names, so: every ConfigMap).
    for verb in ("list", "watch"):
        assert can_i(cluster, namespace, gateway, verb, "reportjobs", "reportjobs.io")
        assert can_i(cluster, namespace, gateway, verb, "configmaps")
    assert not can_i(cluster, "default", gateway, "watch", "configmaps")
    assert not can_i(cluster, namespace, gateway, "delete", "configmaps", name=shard)
    assert not can_i(cluster, namespace, gateway, "delete", "reportjobs", "reportjobs.io")
    assert not can_i(cluster, namespace, gateway, "update", "leases", "coordination.k8s.io")
    for verb in ("get", "update", "patch"):  # get: a job's claim, before it is taken on
        assert can_i(cluster, namespace, operator, verb, "configmaps", name=shard)
        assert not can_i(cluster, namespace, operator, verb, "configmaps", name=other)
    assert not can_i(cluster, namespace, operator, "delete", "configmaps", name=shard)
    # The finished Job stays; a Job still active when its ReportJob ended is patched to stop;
    # worker pods go by a collection delete; no pod is created or updated by the operator.
    assert can_i(cluster, namespace, operator, "patch", "jobs", "batch")
    assert can_i(cluster, namespace, operator, "deletecollection", "pods")
    assert not can_i(cluster, namespace, operator, "create", "pods")
    assert not can_i(cluster, namespace, operator, "update", "pods")
    assert can_i(cluster, namespace, operator, "create", "events")
    assert not can_i(cluster, namespace, operator, "delete", "events")
    # Shard and member Leases in its own namespace only.
    for verb in ("list", "create", "update", "delete"):
        assert can_i(cluster, namespace, operator, verb, "leases", "coordination.k8s.io")
    assert not can_i(cluster, "default", operator, "update", "leases", "coordination.k8s.io")


def test_kubectl_get_reportjobs_is_a_first_class_view(
    deploy_release: DeployRelease, kubeconfig: str
) -> None:
    release = deploy_release()
    answer = release.gateway.submit("kubectl-view")
    assert answer.status == 201, answer.body

    def table() -> str:
        return subprocess.run(
            [kubectl_binary(), "--kubeconfig", kubeconfig, "-n", release.namespace, "get", "rj"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    # The ReportJob is created right after the 201 (docs/design.md, "Submission").
    def listed() -> str | None:
        text = table()
        return text if answer.body["job_id"] in text else None

    output = wait_until(listed, timeout=30, what="kubectl get rj to list the job")
    header = output.splitlines()[0].split()
    assert header == ["NAME", "OBJECT", "STATUS", "SLEEP", "ATTEMPTS", "AGE"], output
    assert answer.body["job_id"] in output
    assert "kubectl-view" in output


def test_gateway_is_reachable_through_a_node_port(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    """`make up` publishes the gateway as NodePort 30080; here Kubernetes picks the port, so the
    test never collides with a `make up` release on the same cluster."""
    release = deploy_release(service={"type": "NodePort", "nodePort": None})
    service = cluster.core.read_namespaced_service("reportjobs-gateway", release.namespace)
    port = service.spec.ports[0].node_port
    node = cluster.core.list_node().items[0]
    address = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    url = f"http://{address}:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as answer:
            return bool(answer.status == 200)

    wait_until(ready, timeout=60, what=f"{url}/readyz")
    request = urllib.request.Request(
        f"{url}/jobs",
        data=json.dumps({"object_id": "node-port-object"}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201
        assert json.loads(answer.read())["object_id"] == "node-port-object"
