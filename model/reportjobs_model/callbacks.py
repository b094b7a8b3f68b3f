"""Which callback URLs a job may carry and which addresses a delivery may connect to (pure).

No SSRF: a URL must be http or https, at most 2,048 characters, its host a well-formed host
name (or IP literal), and the host must resolve only to globally routable addresses, unless an
allowed CIDR or host lets it through. An address is refused when it is in the cluster's own
ranges (`blocked`), in one of the special-purpose ranges below (IANA's IPv4 and IPv6
special-purpose registries, multicast and the reserved space: a table of our own, so the answer
does not depend on which ranges one Python version's `ipaddress` lists), or when `ipaddress`
does not call it global. An IPv6 address outside 2000::/3 (the only global unicast space) is
refused, except the NAT64 well-known prefix. An IPv6 address that leads to an IPv4 address is
judged by that address too: IPv4-mapped (only by its IPv4), 6to4, Teredo (server and client)
and NAT64.

A refusal names the host the user sent, never an address it resolved to: that would make the
API a DNS lookup service for the cluster's internal names. The gateway checks at submission;
the operator checks again the addresses it actually connects to (DNS can change).
"""

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from encodings import idna
from typing import Final
from urllib.parse import urlsplit

MAX_URL_LENGTH: Final = 2048
SCHEMES: Final = frozenset({"http", "https"})
MAX_HOST_LENGTH: Final = 253
"""Of a host name in its ASCII (IDNA) form, without the root's trailing dot."""
MAX_LABEL_LENGTH: Final = 63

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The label separators of IDNA, which getaddrinfo applies to a host given as text.
_DOTS: Final = re.compile("[.\u3002\uff0e\uff61]")
# C0 and C1 controls, DEL and lone surrogates: no URL carries them.
_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATES: Final = re.compile("[\ud800-\udfff]")


def _table(rows: Iterable[tuple[str, str]]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(cidr), kind) for cidr, kind in rows)


SPECIAL_PURPOSE: Final = _table(
    [
        # IPv4 (RFC 6890 and its updates), the first match names the kind.
        ("0.0.0.0/32", "unspecified"),
        ("0.0.0.0/8", "this-network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        # IPv6
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped"),  # judged by its IPv4 before it gets here
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("100:0:0:1::/64", "dummy"),
        ("2001::/23", "IETF protocol assignment"),  # Teredo, benchmarking, ORCHID, ...
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4"),  # deprecated (RFC 7526); IANA: not known to be reachable
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "private"),  # unique local
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    ]
)
"""Ranges a callback may never reach (unless allowed), with the kind a refusal names."""

GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
NAT64: Final = (NAT64_WELL_KNOWN, ipaddress.IPv6Network("64:ff9b:1::/48"))


def _ascii_label(label: str) -> bytes:
    """A label as IDNA writes it (``ToASCII`` without its length check, made apart)."""
    if label.isascii():
        return label.encode("ascii")
    prepared = idna.nameprep(label)
    return prepared.encode("ascii") if prepared.isascii() else b"xn--" + prepared.encode("punycode")


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    """Why the URL's host (lower-cased, without brackets) cannot be resolved as it is."""
    if bracketed:
        if "%" in host:
            return "callback_url must not carry an IPv6 zone id"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"callback_url host {host!r} is not an IPv6 address"
        return None
    if any(not char.isprintable() or char.isspace() for char in host):
        return f"callback_url host {host!r} contains a space, control or format character"
    name = host[:-1] if _DOTS.fullmatch(host[-1]) else host  # a trailing dot: the root
    labels = _DOTS.split(name)
    if "" in labels:
        return f"callback_url host {host!r} has an empty label"
    try:
        encoded = [_ascii_label(label) for label in labels]
    except UnicodeError as exc:
        return f"callback_url host {host!r} is not a valid host name: {exc}"
    if any(len(label) > MAX_LABEL_LENGTH for label in encoded):
        return f"callback_url host {host!r} has a label longer than {MAX_LABEL_LENGTH} characters"
    if len(b".".join(encoded)) > MAX_HOST_LENGTH:
        return f"callback_url host is longer than {MAX_HOST_LENGTH} characters"
    try:
        host.encode("idna")  # what getaddrinfo does with it
    except UnicodeError as exc:
        return f"callback_url host {host!r} is not a valid host name: {exc}"
    return None


def url_problem(url: str) -> str | None:
    """Why the URL cannot be a callback (None: its form is fine; its addresses are checked
    apart)."""
    if len(url) > MAX_URL_LENGTH:
        return f"callback_url is longer than {MAX_URL_LENGTH} characters"
    if _SURROGATES.search(url):
        return "callback_url must be valid Unicode text (no lone surrogates)"
    if _CONTROLS.search(url):
        return "callback_url must not contain control characters"
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
    return _host_problem(parts.hostname, bracketed=parts.netloc.startswith("["))


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme.lower() == "https" else 80
    return str(parts.hostname), parts.port or default


def _networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def address_of(text: str) -> Address:
    """An address as getaddrinfo gives it (an IPv6 zone id dropped); an IPv4-mapped IPv6
    address is its IPv4 address."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def embedded_ipv4(address: Address) -> tuple[tuple[ipaddress.IPv4Address, str], ...]:
    """The IPv4 addresses an IPv6 address leads to, each with the mechanism: 6to4 (2002::/16),
    Teredo (2001::/32: its server, and its client, stored bit-inverted) and NAT64 (the last 32
    bits)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    found: list[tuple[ipaddress.IPv4Address, str]] = []
    if address.sixtofour is not None:
        found.append((address.sixtofour, "6to4"))
    if address.teredo is not None:
        server, client = address.teredo
        found += [(client, "Teredo"), (server, "Teredo")]
    if any(address in network for network in NAT64):
        found.append((ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF), "NAT64"))
    return tuple(found)


def non_public_kind(address: Address) -> str | None:
    """Why the address itself is not public (None: it is globally routable); what it embeds
    is not looked at."""
    kind = next((kind for network, kind in SPECIAL_PURPOSE if address in network), None)
    if kind is not None:
        return kind
    if isinstance(address, ipaddress.IPv6Address) and not (
        address in GLOBAL_UNICAST or address in NAT64_WELL_KNOWN
    ):
        return "reserved"
    if not address.is_global:  # a range this table may not know of yet
        return "special-purpose"
    return None


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

    def _allowed(self, address: Address) -> bool:
        return any(address in network for network in self.allowed_cidrs)

    def _why_not(self, address: Address) -> str | None:
        """Why this one address is refused, in words that do not name it (None: allowed)."""
        if self._allowed(address):
            return None
        # What it leads to first: the refusal then says where (6to4 and Teredo are refused
        # as such too, NAT64's well-known prefix is not).
        for judged, via in (*embedded_ipv4(address), (address, "")):
            if via and self._allowed(judged):
                continue
            through = f", through {via}" if via else ""
            if any(judged in network for network in self.blocked_cidrs):
                return f"resolves to a cluster address (blocked{through})"
            kind = non_public_kind(judged)
            if kind is not None:
                return f"is not a public address ({kind}{through})"
        return None

    def refusal(self, *, host: str, addresses: Iterable[str]) -> str | None:
        """Why connecting to `host` at these addresses is refused (None: allowed). The message
        names the host, not the addresses."""
        if self.host_allowed(host):
            return None
        listed = list(addresses)
        if not listed:
            return f"callback_url host {host!r} does not resolve"
        for text in listed:
            why = self._why_not(address_of(text))
            if why is not None:
                return f"callback_url host {host!r} {why}"
        return None
