"""A validating admission webhook on this host that holds every matching write for a while.

It allows everything, after `delay` seconds: the policy engines (Gatekeeper, Kyverno) and slow
etcd that make a write commit seconds after the API server stamped it. It runs in the test
process over HTTPS (a throwaway CA from openssl) and is reached by the API server at
127.0.0.1, so it works where the API server runs on this machine (the local test bed).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.support.kube import Cluster

NAMESPACE_LABEL = "reportjobs-e2e/slow-admission"


def _certificate(directory: Path) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for 127.0.0.1: (cert file, key file, the PEM as CA bundle)."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key, cert.read_bytes()


@dataclass
class SlowAdmission:
    """What the webhook saw: writes by kind and operation, and how long it held them."""

    delay: float
    seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = review["request"]
                with webhook.lock:
                    webhook.seen[f"{request['operation']} {request['resource']['resource']}"] += 1
                time.sleep(webhook.delay)  # the point of this webhook: hold the write
                answer = {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {"uid": request["uid"], "allowed": True},
                }
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler


@contextmanager
def slow_admission(cluster: Cluster, namespace: str, *, delay: float) -> Iterator[SlowAdmission]:
    """Delay creates and updates of the gateway's objects (ReportJobs and window shards) in
    `namespace` by `delay` seconds, for the duration of the block."""
    webhook = SlowAdmission(delay=delay)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, bundle = _certificate(Path(tmp))
        server = ThreadingHTTPServer(("127.0.0.1", 0), webhook.handler())
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        cluster.core.patch_namespace(namespace, {"metadata": {"labels": {NAMESPACE_LABEL: "on"}}})
        admission = client.AdmissionregistrationV1Api(cluster.api)
        name = f"slow-admission-{namespace}"
        admission.create_validating_webhook_configuration(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": name},
                "webhooks": [
                    {
                        "name": "slow.reportjobs-e2e.io",
                        "clientConfig": {
                            "url": f"https://127.0.0.1:{port}/validate",
                            "caBundle": base64.b64encode(bundle).decode(),
                        },
                        "rules": [
                            {
                                "apiGroups": ["reportjobs.io"],
                                "apiVersions": ["*"],
                                "operations": ["CREATE", "UPDATE"],
                                "resources": ["reportjobs"],
                            },
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE", "UPDATE"],
                                "resources": ["configmaps"],
                            },
                        ],
                        "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "on"}},
                        "objectSelector": {
                            "matchLabels": {"app.kubernetes.io/managed-by": "reportjobs-gateway"}
                        },
                        "failurePolicy": "Fail",
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1"],
                        "timeoutSeconds": int(delay) + 10,
                    }
                ],
            }
        )
        try:
            yield webhook
        finally:
            try:
                admission.delete_validating_webhook_configuration(name)
            except ApiException as error:
                if error.status != 404:
                    raise
            server.shutdown()
