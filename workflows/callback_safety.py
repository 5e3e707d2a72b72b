"""Completion callbacks must not become a way into Ops-Core's own network (SSRF).

Rules (docs/security.md):
- ``https`` only; ``http`` when ``OPSCORE_CALLBACK_ALLOW_HTTP`` is true. No credentials in the URL.
- The host must resolve, and only to public addresses: loopback, private, link-local (cloud metadata at
  169.254.169.254), shared, reserved, multicast and unspecified addresses are refused unless the host name or the
  address is in ``OPSCORE_CALLBACK_ALLOWED_HOSTS`` (names or CIDR ranges).
- Checked when the session is triggered (400 naming ``callbackUrl``) and again at each delivery, and the delivery
  connects to the very address that was checked, so a name that re-resolves elsewhere (DNS rebinding) cannot
  slip through. TLS is still verified against the host name.
- No redirects, connect/read timeouts, at most ``OPSCORE_CALLBACK_MAX_RESPONSE_BYTES`` of the answer are read.
- A failed delivery is described by a short reason (``HTTP 500``, ``timed out``…), never the remote body.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeCallbackUrl(ValueError):
    """The URL may not be called; ``str(exc)`` is a short reason fit for a 400 or an event."""


@dataclass(frozen=True)
class CallbackTarget:
    scheme: str
    host: str
    port: int
    address: str
    path: str


@dataclass(frozen=True)
class CallbackResult:
    status_code: int | None
    error: str  # empty on success


def _allow_list() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    names, networks = set(), []
    for entry in settings.OPSCORE_CALLBACK_ALLOWED_HOSTS:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return names, networks


def address_is_public(address: IPAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a seam: tests without network replace it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_callback_url(url: str) -> CallbackTarget:
    """Validate ``url`` and resolve its host; return where to connect. Raises UnsafeCallbackUrl."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeCallbackUrl("not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeCallbackUrl("only https URLs are allowed")
    if scheme == "http" and not settings.OPSCORE_CALLBACK_ALLOW_HTTP:
        raise UnsafeCallbackUrl("only https URLs are allowed (OPSCORE_CALLBACK_ALLOW_HTTP is off)")
    if parts.username or parts.password:
        raise UnsafeCallbackUrl("credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeCallbackUrl("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    allowed_names, allowed_networks = _allow_list()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve_host(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeCallbackUrl(f"host {host!r} does not resolve") from exc
        if not addresses:
            raise UnsafeCallbackUrl(f"host {host!r} does not resolve")
    if host not in allowed_names:
        for raw in addresses:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
            if address_is_public(address) or any(address in network for network in allowed_networks):
                continue
            raise UnsafeCallbackUrl(
                f"host {host!r} resolves to a non-public address ({address}); "
                "allow it with OPSCORE_CALLBACK_ALLOWED_HOSTS"
            )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return CallbackTarget(scheme=scheme, host=host, port=port, address=addresses[0], path=path)


def post_callback(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> CallbackResult:
    """POST ``body`` to ``url`` under the rules above; never raises for network or HTTP failures."""
    try:
        target = check_callback_url(url)
    except UnsafeCallbackUrl as exc:
        return CallbackResult(None, f"refused: {exc}"[:300])
    bracketed = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    host_header = bracketed if target.port == default_port else f"{bracketed}:{target.port}"
    common = {"port": target.port, "timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False}
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **common,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, **common)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            response.read(amt=settings.OPSCORE_CALLBACK_MAX_RESPONSE_BYTES, decode_content=False)
        finally:
            response.release_conn()
    except urllib3.exceptions.NewConnectionError:  # (a subclass of the timeout error in urllib3 2)
        return CallbackResult(None, "connection failed")
    except urllib3.exceptions.TimeoutError:
        return CallbackResult(None, "timed out")
    except urllib3.exceptions.SSLError:
        return CallbackResult(None, "TLS error")
    except (urllib3.exceptions.HTTPError, OSError):
        return CallbackResult(None, "connection failed")
    finally:
        pool.close()
    status = response.status
    if 200 <= status < 300:
        return CallbackResult(status, "")
    if 300 <= status < 400:
        return CallbackResult(status, f"HTTP {status} (redirects are not followed)")
    return CallbackResult(status, f"HTTP {status}")
