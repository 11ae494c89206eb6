"""Network: the sandbox has none. Every probe runs from INSIDE it (where nothing can leave);
the host side only ever connects to loopback."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
import socket
import time

from .. import hostside
from ..harness import Context
from ..model import NETWORK, Case, Verdict, all_denied, brief, code_case
from .isolation import PRELUDE

DNS = """
report('resolve-example.com', lambda: socket.getaddrinfo('example.com', 80))
report('resolve-metadata', lambda: socket.getaddrinfo('metadata.google.internal', 80))
def udp_dns(server):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    query = bytes.fromhex('abcd01000001000000000000076578616d706c6503636f6d0000010001')
    s.sendto(query, (server, 53))
    return s.recv(512)
for server in ('8.8.8.8', '1.1.1.1', '127.0.0.11'):
    report('udp-dns-' + server, lambda: udp_dns(server))
"""

TCP = """
for host, port in (('1.1.1.1', 443), ('8.8.8.8', 53), ('93.184.216.34', 80),
                   ('10.0.0.1', 22), ('172.17.0.1', 80), ('192.168.0.1', 80)):
    report(f'tcp-{host}:{port}', lambda: socket.create_connection((host, port), timeout=2))
def udp(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return s.sendto(b'x', (host, 9))
report('udp-send-out', lambda: udp('8.8.8.8'))
"""

METADATA = """
import urllib.request
for host in ('169.254.169.254', '169.254.170.2', '100.100.100.200'):
    report('tcp-' + host, lambda: socket.create_connection((host, 80), timeout=2))
report('http-aws-metadata', lambda: urllib.request.urlopen(
    'http://169.254.169.254/latest/meta-data/', timeout=2).read(64))
report('http-gcp-metadata', lambda: urllib.request.urlopen(urllib.request.Request(
    'http://169.254.169.254/computeMetadata/v1/', headers={'Metadata-Flavor': 'Google'}),
    timeout=2).read(64))
def v6_metadata():
    s = socket.socket(socket.AF_INET6)
    s.settimeout(2)
    s.connect(('fd00:ec2::254', 80))
    return 'connected'
report('tcp-fd00:ec2::254', v6_metadata)
"""

RAW = """
report('raw-icmp', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
report('raw-tcp', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP))
report('raw-ipv6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6))
report('packet-socket', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0x0300))
def ping_out():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    return s.sendto(b'\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00', ('8.8.8.8', 0))
report('icmp-datagram-out', ping_out)
report('netlink-route-add', lambda: subprocess.run(
    ['ip', 'route', 'add', 'default', 'dev', 'lo'], check=True, capture_output=True))
"""

IPV6 = """
def v6(host, port):
    s = socket.socket(socket.AF_INET6)
    s.settimeout(2)
    s.connect((host, port))
    return 'connected'
for host, port in (('2606:4700:4700::1111', 443), ('2001:4860:4860::8888', 53),
                   ('64:ff9b::808:808', 53), ('::ffff:8.8.8.8', 53), ('fe80::1%lo', 80)):
    report(f'tcp6-{host}', lambda: v6(host, port))
def multicast():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    return s.sendto(b'x', ('ff02::1', 9))
report('udp6-multicast', multicast)
"""

INTERFACES = """
report('interfaces', lambda: check(sorted(os.listdir('/sys/class/net')) != ['lo'],
                                   os.listdir('/sys/class/net'), 'only lo'))
routes = open('/proc/net/route').read().splitlines()[1:]
report('ipv4-routes', lambda: check(routes, routes, 'no routes'))
v6routes = [r for r in open('/proc/net/ipv6_route').read().splitlines() if not r.endswith(' lo')]
report('ipv6-routes', lambda: check(v6routes, v6routes, 'only lo routes'))
"""

ABSTRACT = """
def abstract():
    s = socket.socket(socket.AF_UNIX)
    s.connect('\\0@NAME@')
    return 'connected'
report('host-abstract-socket', abstract)
def path_socket():
    s = socket.socket(socket.AF_UNIX)
    s.connect('@PATH@')
    return 'connected'
report('host-path-socket', path_socket)
"""

LISTEN = """
import threading
servers = []
for family, addr in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, @PORT@))
    s.listen()
    servers.append(s)
def serve(s):
    while True:
        c, _ = s.accept()
        c.sendall(b'FROM-SANDBOX')
        c.close()
for s in servers:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print('listening')
"""


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _try_connect(family: int, host: str, port: int) -> str:
    """Connect from the host to a loopback address only."""
    assert host in ("127.0.0.1", "::1")
    with socket.socket(family) as s:
        s.settimeout(1.0)
        try:
            s.connect((host, port))
            return f"CONNECTED, got {s.recv(32)!r}"
        except OSError as exc:
            return errno.errorcode.get(exc.errno or 0, str(exc))


async def listen_and_be_reached(ctx: Context) -> Verdict:
    session = await ctx.session()
    port = _free_loopback_port()
    r = await session.execute(PRELUDE + LISTEN.replace("@PORT@", str(port)), timeout=30)
    end = time.perf_counter()
    if "listening" not in r.stdout:
        return Verdict(False, f"could not even listen inside: {brief(r)}", session, end)
    v4 = await asyncio.to_thread(_try_connect, socket.AF_INET, "127.0.0.1", port)
    v6 = await asyncio.to_thread(_try_connect, socket.AF_INET6, "::1", port)
    info = await hostside.inspect(session)
    mode = info["HostConfig"]["NetworkMode"]
    ports = info["NetworkSettings"].get("Ports") or {}
    address = info["NetworkSettings"].get("IPAddress") or ""
    ok = "CONNECTED" not in v4 + v6 and mode == "none" and not ports and not address
    return Verdict(
        ok,
        f"sandbox listens on :{port}; host 127.0.0.1 -> {v4}, [::1] -> {v6}; "
        f"NetworkMode={mode}, published ports={ports or 'none'}, IP={address or 'none'}",
        session,
        end,
    )


async def host_unix_sockets(ctx: Context) -> Verdict:
    """Abstract Unix sockets belong to a network namespace; path sockets need the path."""
    name = f"sandbox-bench-{secrets.token_hex(6)}"
    path = ctx.workdir / "host.sock"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0" + name)
    abstract.listen()
    on_disk = socket.socket(socket.AF_UNIX)
    on_disk.bind(str(path))
    on_disk.listen()
    try:
        session = await ctx.session()
        code = PRELUDE + ABSTRACT.replace("@NAME@", name).replace("@PATH@", str(path))
        r = await session.execute(code, timeout=30)
        end = time.perf_counter()
        ok, evidence = all_denied(r)
        return Verdict(ok, evidence, session, end)
    finally:
        abstract.close()
        on_disk.close()
        with contextlib.suppress(OSError):
            path.unlink()


def probe(name: str, attack: str, expected: str, body: str, quick: bool = False) -> Case:
    return code_case(name, NETWORK, attack, expected, PRELUDE + body, all_denied, quick=quick)


CASES = [
    probe(
        "dns",
        "resolve names, and query public resolvers and Docker's embedded DNS over UDP",
        "no resolver answers: no network, no DNS",
        DNS,
    ),
    probe(
        "tcp-out",
        "TCP connections to public and private addresses, UDP out",
        "ENETUNREACH: the only interface is lo",
        TCP,
        quick=True,
    ),
    probe(
        "cloud-metadata",
        "reach 169.254.169.254 (AWS, GCP, Azure), ECS, Alibaba, IPv6 fd00:ec2::254",
        "unreachable",
        METADATA,
    ),
    probe(
        "raw-sockets",
        "raw IPv4/IPv6 and packet sockets, ICMP out, add a route",
        "EPERM without CAP_NET_RAW/NET_ADMIN; nothing can be sent out",
        RAW,
    ),
    probe(
        "ipv6-out",
        "IPv6 to public resolvers, NAT64, v4-mapped, link-local, multicast",
        "unreachable",
        IPV6,
    ),
    probe(
        "interfaces-and-routes",
        "look for any interface or route besides loopback",
        "only lo, no routes",
        INTERFACES,
    ),
    Case(
        "listen-and-be-reached",
        NETWORK,
        "listen on 0.0.0.0 and :: inside, then connect to that port from the host's loopback",
        "the host cannot reach it: network none, no published ports, no address",
        listen_and_be_reached,
    ),
    Case(
        "host-unix-sockets",
        NETWORK,
        "connect to a host process's abstract and path Unix sockets",
        "refused: abstract sockets are per network namespace; the path does not exist inside",
        host_unix_sockets,
    ),
]
