"""Which callback URLs a job may carry and which addresses a delivery may connect to (pure).

No SSRF: a URL must be http or https, at most 2,048 characters, and its host must resolve only
to public addresses: not loopback, link-local, private, multicast, unspecified or reserved, nor
in the cluster's own ranges (`blocked`), unless an allowed CIDR or host lets it through. The
gateway checks at submission; the operator checks again the addresses it actually connects to
(DNS can change).
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

MAX_URL_LENGTH: Final = 2048
SCHEMES: Final = frozenset({"http", "https"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def url_problem(url: str) -> str | None:
    """Why the URL cannot be a callback (None: its form is fine; its addresses are checked
    apart)."""
    if len(url) > MAX_URL_LENGTH:
        return f"callback_url is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"callback_url is not a URL: {exc}"
    if parts.scheme.lower() not in SCHEMES:
        return "callback_url must be an http or https URL"
    if not parts.hostname:
        return "callback_url has no host"
    if parts.username is not None or parts.password is not None:
        return "callback_url must not carry credentials"
    if port == 0:
        return "callback_url has port 0"
    return None


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme.lower() == "https" else 80
    return str(parts.hostname), parts.port or default


def _networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _kind(address: Address) -> str | None:
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    return next((kind for kind, hit in checks if hit), None)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    allowed_cidrs: tuple[Network, ...] = ()
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    blocked_cidrs: tuple[Network, ...] = ()
    """The cluster's pod and service ranges (and any other range to refuse)."""

    @classmethod
    def of(
        cls,
        *,
        allowed_cidrs: Iterable[str],
        allowed_hosts: Iterable[str],
        blocked_cidrs: Iterable[str],
    ) -> "AddressPolicy":
        return cls(
            allowed_cidrs=_networks(allowed_cidrs),
            allowed_hosts=frozenset(host.lower().rstrip(".") for host in allowed_hosts),
            blocked_cidrs=_networks(blocked_cidrs),
        )

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allowed_hosts

    def refusal(self, *, host: str, addresses: Iterable[str]) -> str | None:
        """Why connecting to `host` at these addresses is refused (None: allowed)."""
        if self.host_allowed(host):
            return None
        listed = list(addresses)
        if not listed:
            return f"callback_url host {host!r} does not resolve"
        for text in listed:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            if any(address in network for network in self.allowed_cidrs):
                continue
            if any(address in network for network in self.blocked_cidrs):
                return f"callback_url host {host!r} resolves to {address}, a cluster address"
            kind = _kind(address)
            if kind is not None:
                return f"callback_url host {host!r} resolves to {address}, a {kind} address"
        return None
