"""The egress proxy's policy, as a mitmproxy addon (``mitmdump -s egress_addon.py``).

One proxy serves one sandbox; its policy comes in ``EGRESS_POLICY`` (JSON: ``sandbox``,
``session``, ``allowed_domains``, ``client_subnet``, ``secrets``: ``domain``, ``placeholder``,
``value``). TLS to a domain with a secret is decrypted (with the engine's CA, which only such
sandboxes trust) so that the placeholder can be replaced in its request headers; all other TLS
passes through untouched. A request goes out only when the CONNECT
host and the TLS SNI (or, for plain HTTP, the URL's host and the Host header) match the
allowlist, on port 443 (80 for plain HTTP). Everything else gets an HTTP 403 naming the policy
where HTTP can still answer, and a closed connection where it cannot (after the tunnel is up).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from egress_hosts import host_allowed, is_ip_literal, normalize_domain
from mitmproxy import http
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers import ClientTLSLayer, HttpLayer, ServerTLSLayer, TCPLayer
from mitmproxy.proxy.layers.http import HTTPMode
from mitmproxy.proxy.layers.tls import parse_client_hello

TLS_PORT = 443
HTTP_PORT = 80
log = logging.getLogger("egress")


class EgressPolicy:
    def __init__(self, policy: dict[str, Any]) -> None:
        self.sandbox = str(policy.get("sandbox", ""))
        self.session = str(policy.get("session", ""))
        self.allowed = [str(d) for d in policy["allowed_domains"]]
        self.subnet = ipaddress.ip_network(policy["client_subnet"])
        self.secrets = [
            (str(s["domain"]), str(s["placeholder"]), str(s["value"]))
            for s in policy.get("secrets", ())
        ]

    # --- who may use the proxy ---

    def client_connected(self, client: Any) -> None:
        address = ipaddress.ip_address(client.peername[0].removeprefix("::ffff:"))
        if address not in self.subnet:
            client.error = "not this proxy's sandbox"
            self._refused(f"client {address}", "not on the sandbox's network")

    # --- plain HTTP and CONNECT: answered with a 403 ---

    def http_connect(self, flow: http.HTTPFlow) -> None:
        host, port = flow.request.host, flow.request.port
        reason = self._why_not(host, port, TLS_PORT)
        if reason:
            self._deny(flow, host, port, reason)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.request.method == "CONNECT" or flow.response is not None:
            return
        if flow.server_conn.address and flow.request.scheme == "https":
            host, port = flow.server_conn.address  # decrypted: the tunnel's CONNECT host
        else:
            host, port = flow.request.host, flow.request.port
        expected = TLS_PORT if flow.request.scheme == "https" else HTTP_PORT
        reason = self._why_not(host, port, expected)
        header = (flow.request.host_header or "").rsplit(":", 1)[0] if not reason else ""
        if not reason and _name(header) != _name(host):
            reason = f"the Host header {header!r} is not the host connected to"
        if reason:
            self._deny(flow, host, port, reason)
            return
        for domain, placeholder, value in self.secrets:
            if domain != _name(host):
                continue
            for name, text in flow.request.headers.items(multi=True):
                if placeholder in text:
                    flow.request.headers[name] = text.replace(placeholder, value)

    # --- inside a CONNECT tunnel: TLS to the host asked for, or nothing ---

    def next_layer(self, nextlayer: Any) -> None:
        """Runs before mitmproxy's own choice (script addons come first), which, with
        ``allow_hosts`` matching nothing, waits for a whole ClientHello as well."""
        context = nextlayer.context
        data = nextlayer.data_client()
        if len(context.layers) <= 1 or not data:
            return
        host = context.server.address[0] if context.server.address else ""
        if context.client.tls_established:  # decrypted, for a domain with a secret
            nextlayer.layer = HttpLayer(context, HTTPMode.transparent)
            return
        try:
            hello = parse_client_hello(data)
        except ValueError:
            hello = None
        else:
            if hello is None:
                return  # a ClientHello still arriving: asked again with more
        if hello is None:
            reason = "only TLS may go through a tunnel"
        elif _name(hello.sni or "") != _name(host):
            reason = f"the TLS SNI {hello.sni!r} is not the CONNECT host"
        elif any(domain == _name(host) for domain, _, _ in self.secrets):
            nextlayer.layer = ServerTLSLayer(context)
            nextlayer.layer.child_layer = ClientTLSLayer(context)
            return
        else:
            nextlayer.layer = TCPLayer(context, ignore=True)
            return
        self._refused(host, reason)
        nextlayer.layer = Refuse(context)

    # --- helpers ---

    def _why_not(self, host: str, port: int, expected: int) -> str:
        if is_ip_literal(host):
            return "IP addresses are never allowed, only domain names"
        if port != expected:
            return f"port {port} is not allowed (only {expected} here)"
        if not host_allowed(host, self.allowed):
            return "the domain is not in the allowlist"
        return ""

    def _deny(self, flow: http.HTTPFlow, host: str, port: int, reason: str) -> None:
        self._refused(f"{host}:{port}", reason)
        body = {
            "error": {
                "type": "egress_refused",
                "message": f"{host}:{port} refused by this sandbox's network policy "
                f"(allowlist): {reason}",
                "allowed_domains": self.allowed,
            }
        }
        flow.response = http.Response.make(
            403, json.dumps(body) + "\n", {"Content-Type": "application/json"}
        )

    def _refused(self, host: str, reason: str) -> None:
        log.warning(
            "egress refused: session=%s sandbox=%s host=%s reason=%s",
            self.session,
            self.sandbox,
            host,
            reason,
        )


class Refuse(layer.Layer):  # type: ignore[misc]
    """Closes the client's connection, sending nothing on to the server."""

    def _handle_event(self, event: Any) -> Iterator[Any]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)


def _name(host: str) -> str:
    try:
        return str(normalize_domain(host, wildcard=False))
    except ValueError:
        return ""


addons = [EgressPolicy(json.loads(os.environ["EGRESS_POLICY"]))]
