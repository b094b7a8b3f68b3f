"""The Pod Security Standards' "restricted" profile (its current version, which includes every
baseline control) as a table of rules, one per control, named as the standard names it:
https://kubernetes.io/docs/concepts/security/pod-security-standards/

`violations(pod)` lists what a pod (or a pod template) breaks, each line naming its control.
Windows pods are not exempted here: ours are Linux pods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class PodView:
    """What the controls look at: a pod's metadata and spec (a Pod's, or a template's)."""

    metadata: Obj
    spec: Obj


@dataclass(frozen=True, slots=True, kw_only=True)
class Control:
    """One control of the standard: its `name` in its `profile`, and the check that lists how a
    pod breaks it (nothing: it complies)."""

    profile: str
    name: str
    check: Callable[[PodView], Iterator[str]]

    @property
    def title(self) -> str:
        return f"{self.profile}: {self.name}"


# -- where the controls look ---------------------------------------------------------------------

CONTAINER_LISTS: Final = ("containers", "initContainers", "ephemeralContainers")


def _containers(pod: PodView) -> Iterator[tuple[str, Obj]]:
    for field in CONTAINER_LISTS:
        for container in pod.spec.get(field) or []:
            yield f"{field}[{container.get('name')}]", container


def _pod_context(pod: PodView) -> Obj:
    context: Obj = pod.spec.get("securityContext") or {}
    return context


def _context(container: Obj) -> Obj:
    context: Obj = container.get("securityContext") or {}
    return context


def _contexts(pod: PodView) -> Iterator[tuple[str, Obj]]:
    """The pod's security context, then each container's."""
    yield "securityContext", _pod_context(pod)
    for where, container in _containers(pod):
        yield f"{where}.securityContext", _context(container)


# -- baseline ------------------------------------------------------------------------------------


def _host_process(pod: PodView) -> Iterator[str]:
    for where, context in _contexts(pod):
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{where}.windowsOptions.hostProcess is true"


def _host_namespaces(pod: PodView) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.spec.get(field):
            yield f"{field} is true"


def _privileged(pod: PodView) -> Iterator[str]:
    for where, container in _containers(pod):
        if _context(container).get("privileged"):
            yield f"{where}.securityContext.privileged is true"


BASELINE_CAPABILITIES: Final = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _added(container: Obj) -> list[str]:
    return [str(c) for c in (_context(container).get("capabilities") or {}).get("add") or []]


def _baseline_capabilities(pod: PodView) -> Iterator[str]:
    for where, container in _containers(pod):
        for capability in _added(container):
            if capability not in BASELINE_CAPABILITIES:
                yield f"{where} adds capability {capability}"


def _host_path(pod: PodView) -> Iterator[str]:
    for volume in pod.spec.get("volumes") or []:
        if "hostPath" in volume:
            yield f"volume {volume.get('name')} is a hostPath"


def _host_ports(pod: PodView) -> Iterator[str]:
    for where, container in _containers(pod):
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield f"{where} has hostPort {port['hostPort']}"


APPARMOR_ANNOTATION: Final = "container.apparmor.security.beta.kubernetes.io/"


def _app_armor(pod: PodView) -> Iterator[str]:
    for key, value in (pod.metadata.get("annotations") or {}).items():
        allowed = value == "runtime/default" or str(value).startswith("localhost/")
        if key.startswith(APPARMOR_ANNOTATION) and not allowed:
            yield f"annotation {key} is {value!r}"
    for where, context in _contexts(pod):
        kind = (context.get("appArmorProfile") or {}).get("type")
        if kind not in (None, "RuntimeDefault", "Localhost"):
            yield f"{where}.appArmorProfile.type is {kind}"


SELINUX_TYPES: Final = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)


def _se_linux(pod: PodView) -> Iterator[str]:
    for where, context in _contexts(pod):
        options = context.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            yield f"{where}.seLinuxOptions.type is {options['type']}"
        for field in ("user", "role"):
            if options.get(field):
                yield f"{where}.seLinuxOptions.{field} is set"


def _proc_mount(pod: PodView) -> Iterator[str]:
    for where, container in _containers(pod):
        if _context(container).get("procMount") not in (None, "Default"):
            yield f"{where}.securityContext.procMount is {_context(container)['procMount']}"


def _seccomp_type(context: Obj) -> str | None:
    kind = (context.get("seccompProfile") or {}).get("type")
    return None if kind is None else str(kind)


def _baseline_seccomp(pod: PodView) -> Iterator[str]:
    for where, context in _contexts(pod):
        if _seccomp_type(context) == "Unconfined":
            yield f"{where}.seccompProfile.type is Unconfined"


SAFE_SYSCTLS: Final = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)


def _sysctls(pod: PodView) -> Iterator[str]:
    for sysctl in _pod_context(pod).get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"sysctl {sysctl.get('name')} is not a safe one"


# -- restricted ----------------------------------------------------------------------------------

VOLUME_TYPES: Final = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def _volume_types(pod: PodView) -> Iterator[str]:
    for volume in pod.spec.get("volumes") or []:
        for kind in sorted(set(volume) - {"name"} - VOLUME_TYPES):
            yield f"volume {volume.get('name')} is a {kind}"


def _privilege_escalation(pod: PodView) -> Iterator[str]:
    for where, container in _containers(pod):
        if _context(container).get("allowPrivilegeEscalation") is not False:
            yield f"{where}.securityContext.allowPrivilegeEscalation is not false"


def _non_root(pod: PodView) -> Iterator[str]:
    """True on the pod (and no container saying false), or true on every container; never
    false."""
    on_pod = _pod_context(pod).get("runAsNonRoot")
    if on_pod is False:
        yield "securityContext.runAsNonRoot is false"
    for where, container in _containers(pod):
        own = _context(container).get("runAsNonRoot")
        if own is False or (own is None and on_pod is not True):
            yield f"{where} may run as root (runAsNonRoot not true)"


def _non_root_user(pod: PodView) -> Iterator[str]:
    for where, context in _contexts(pod):
        if context.get("runAsUser") == 0:
            yield f"{where}.runAsUser is 0"


RESTRICTED_SECCOMP: Final = frozenset({"RuntimeDefault", "Localhost"})


def _restricted_seccomp(pod: PodView) -> Iterator[str]:
    """Set to RuntimeDefault or Localhost on the pod, or on every container; none other."""
    on_pod = _seccomp_type(_pod_context(pod))
    if on_pod is not None and on_pod not in RESTRICTED_SECCOMP:
        yield f"securityContext.seccompProfile.type is {on_pod}"
    for where, container in _containers(pod):
        own = _seccomp_type(_context(container))
        if own is not None and own not in RESTRICTED_SECCOMP:
            yield f"{where}.securityContext.seccompProfile.type is {own}"
        elif own is None and on_pod is None:
            yield f"{where} has no seccompProfile (nor has the pod)"


def _restricted_capabilities(pod: PodView) -> Iterator[str]:
    for where, container in _containers(pod):
        dropped = (_context(container).get("capabilities") or {}).get("drop") or []
        if "ALL" not in dropped:
            yield f"{where} does not drop ALL capabilities"
        for capability in _added(container):
            if capability != "NET_BIND_SERVICE":
                yield f"{where} adds capability {capability}"


# -- the table -----------------------------------------------------------------------------------

BASELINE: Final = "baseline"
RESTRICTED: Final = "restricted"

CONTROLS: Final = (
    Control(profile=BASELINE, name="HostProcess", check=_host_process),
    Control(profile=BASELINE, name="Host Namespaces", check=_host_namespaces),
    Control(profile=BASELINE, name="Privileged Containers", check=_privileged),
    Control(profile=BASELINE, name="Capabilities", check=_baseline_capabilities),
    Control(profile=BASELINE, name="HostPath Volumes", check=_host_path),
    Control(profile=BASELINE, name="Host Ports", check=_host_ports),
    Control(profile=BASELINE, name="AppArmor", check=_app_armor),
    Control(profile=BASELINE, name="SELinux", check=_se_linux),
    Control(profile=BASELINE, name="/proc Mount Type", check=_proc_mount),
    Control(profile=BASELINE, name="Seccomp", check=_baseline_seccomp),
    Control(profile=BASELINE, name="Sysctls", check=_sysctls),
    Control(profile=RESTRICTED, name="Volume Types", check=_volume_types),
    Control(profile=RESTRICTED, name="Privilege Escalation", check=_privilege_escalation),
    Control(profile=RESTRICTED, name="Running as Non-root", check=_non_root),
    Control(profile=RESTRICTED, name="Running as Non-root user", check=_non_root_user),
    Control(profile=RESTRICTED, name="Seccomp", check=_restricted_seccomp),
    Control(profile=RESTRICTED, name="Capabilities", check=_restricted_capabilities),
)
"""The restricted profile: every baseline control, and the restricted ones on top."""


def violations(pod: PodView) -> list[str]:
    """Each way `pod` breaks the restricted profile, as "<profile>: <control>: <what>"."""
    return [f"{control.title}: {found}" for control in CONTROLS for found in control.check(pod)]


# -- the pods of a manifest ----------------------------------------------------------------------

_TEMPLATE_PATHS: Final = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def pod_of(manifest: Obj) -> PodView | None:
    """The pod a manifest is or makes (None: it makes none)."""
    path = _TEMPLATE_PATHS.get(str(manifest.get("kind")))
    if path is None:
        return None
    template: Obj = manifest
    for key in path:
        template = template[key]
    return PodView(metadata=template.get("metadata") or {}, spec=template["spec"])
