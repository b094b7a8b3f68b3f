"""A Helm release of the chart in its own namespace, installed through scripts/helmctl.py."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.support.gateway import Gateway
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]
HELMCTL = REPO_ROOT / "scripts" / "helmctl.py"
RELEASE = "reportjobs"

# Small and fast by default: 2 cores run the control plane, the releases and the jobs.
FAST_VALUES: dict[str, Any] = {
    "service": {"type": "ClusterIP"},
    "gateway": {"replicas": 1},
    "operator": {"replicas": 1, "resyncSeconds": 10},
    "job": {"sleepMinSeconds": 2, "sleepMaxSeconds": 4},
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def helmctl(
    action: str,
    *,
    kubeconfig: str,
    namespace: str,
    values: dict[str, Any] | None = None,
    timeout: int = 300,
) -> None:
    command = [
        sys.executable,
        str(HELMCTL),
        action,
        "--kubeconfig",
        kubeconfig,
        "--release",
        RELEASE,
        "--namespace",
        namespace,
        "--timeout",
        str(timeout),
    ]
    if values is not None:
        command += ["--values", json.dumps(values)]
    subprocess.run(command, check=True, timeout=timeout + 60)


@dataclass
class Release:
    cluster: Cluster
    kubeconfig: str
    namespace: str
    values: dict[str, Any]

    @property
    def gateway(self) -> Gateway:
        return Gateway(api=self.cluster.api, namespace=self.namespace)

    def deploy(self) -> Release:
        helmctl("deploy", kubeconfig=self.kubeconfig, namespace=self.namespace, values=self.values)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 240) -> None:
        for component, key in (("gateway", "gateway"), ("operator", "operator")):
            want = int(self.values.get(key, {}).get("replicas", 2))
            wait_until(
                lambda c=component, n=want: len(self.cluster.ready_pods(self.namespace, c)) >= n,
                timeout=timeout,
                what=f"{want} ready {component} pod(s) in {self.namespace}",
            )
        wait_until(
            lambda: self.gateway.request("GET", "/readyz").status == 200,
            timeout=timeout,
            what="the gateway to answer /readyz through its Service",
        )

    def uninstall(self) -> None:
        helmctl("uninstall", kubeconfig=self.kubeconfig, namespace=self.namespace)


def scale_operator(
    cluster: Cluster, namespace: str, replicas: int, *, timeout: float = 180
) -> None:
    """Scale the release's operator Deployment to `replicas` and wait: for 0, until no operator
    pod is left (none terminating either: nothing of it acts any more); else until that many
    are ready."""
    name = next(
        d.metadata.name
        for d in cluster.apps.list_namespaced_deployment(namespace).items
        if d.metadata.name.endswith("-operator")
    )
    cluster.apps.patch_namespaced_deployment_scale(
        name, namespace, {"spec": {"replicas": replicas}}
    )
    if replicas == 0:
        wait_until(
            lambda: not cluster.pods(namespace, "operator"),
            timeout=timeout,
            interval=0.5,
            what=f"every operator pod of {namespace} to be gone",
        )
    else:
        wait_until(
            lambda: len(cluster.ready_pods(namespace, "operator")) >= replicas,
            timeout=timeout,
            interval=0.5,
            what=f"{replicas} ready operator pod(s) in {namespace}",
        )
