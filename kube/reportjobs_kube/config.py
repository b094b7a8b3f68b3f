"""Where the API server is and how to authenticate: in-cluster, or a kubeconfig file.

Supports what our clusters use: a CA (file or data), client certificates (file or data), bearer
tokens (in-cluster ones are re-read, since the kubelet rotates them) and insecure-skip-tls-verify.
"""

import base64
import os
import ssl
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reportjobs_kube.errors import Unreachable

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60.0


@dataclass(slots=True)
class Credentials:
    """A bearer token, fixed or read from a file (and re-read once a minute)."""

    token: str | None = None
    token_file: Path | None = None
    _read_at: float = field(default=-1e9, repr=False)

    def authorization(self) -> str | None:
        if self.token_file is not None and time.monotonic() - self._read_at > TOKEN_REREAD_SECONDS:
            self.token = self.token_file.read_text(encoding="utf-8").strip()
            self._read_at = time.monotonic()
        return f"Bearer {self.token}" if self.token else None


@dataclass(frozen=True, slots=True)
class Connection:
    server: str
    ssl: ssl.SSLContext | bool
    credentials: Credentials


def in_cluster() -> Connection:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT_DIR / "ca.crt"))
    credentials = Credentials(token_file=SERVICE_ACCOUNT_DIR / "token")
    return Connection(server=f"https://{host}:{port}", ssl=context, credentials=credentials)


def _named(entries: list[Mapping[str, Any]], name: str, key: str) -> Mapping[str, Any]:
    for entry in entries or []:
        if entry.get("name") == name:
            found: Mapping[str, Any] = entry.get(key) or {}
            return found
    raise Unreachable(f"kubeconfig names {key} {name!r} but does not define it")


def _pem(section: Mapping[str, Any], key: str, *, base: Path) -> bytes | None:
    """`key`-data (base64) or the file `key` names (relative to the kubeconfig)."""
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"])
    if section.get(key):
        return (base / str(section[key])).read_bytes()
    return None


def _ssl_context(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path) -> ssl.SSLContext:
    ca = _pem(cluster, "certificate-authority", base=base)
    context = ssl.create_default_context(cadata=ca.decode() if ca else None)
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert = _pem(user, "client-certificate", base=base)
    key = _pem(user, "client-key", base=base)
    if cert and key:
        # load_cert_chain reads files only; they exist just for the call.
        with tempfile.TemporaryDirectory() as scratch:
            cert_path, key_path = Path(scratch, "tls.crt"), Path(scratch, "tls.key")
            cert_path.write_bytes(cert)
            key_path.touch(mode=0o600)
            key_path.write_bytes(key)
            context.load_cert_chain(cert_path, key_path)
    return context


def from_kubeconfig(path: Path) -> Connection:
    """The current context of a kubeconfig file."""
    document: Mapping[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    context = _named(document.get("contexts") or [], document.get("current-context", ""), "context")
    cluster = _named(document.get("clusters") or [], context.get("cluster", ""), "cluster")
    user = _named(document.get("users") or [], context.get("user", ""), "user")
    token_file = user.get("tokenFile")
    credentials = Credentials(
        token=user.get("token"), token_file=path.parent / token_file if token_file else None
    )
    server = str(cluster.get("server", "")).rstrip("/")
    tls = _ssl_context(cluster, user, path.parent) if server.startswith("https:") else False
    return Connection(server=server, ssl=tls, credentials=credentials)


def load_connection() -> Connection:
    """In-cluster when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG or ~/.kube/config."""
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return in_cluster()
        first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        return from_kubeconfig(Path(first) if first else Path.home() / ".kube" / "config")
    except (OSError, ValueError, KeyError, yaml.YAMLError, ssl.SSLError) as exc:
        raise Unreachable(f"no usable Kubernetes configuration: {exc}") from exc
