"""A small internet with no internet: an HTTPS and HTTP server on an internal Docker network.

It answers to api.good.test, other.good.test and api.bad.test with a certificate from a test
CA, echoes the request (Host, path, port, Authorization) as JSON, redirects ``/redirect`` to
api.bad.test and serves a one-wheel package index. Only egress proxies join its network, and
they resolve its names through Docker's DNS there. The egress tests, the security bench's
egress cases and ``bench egress`` all run against it.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine import Settings
from engine.image import default_image_tag

ALLOWED = "*.good.test"
"""The operator's cap the engine runs with against this internet."""

NAMES = ("api.good.test", "other.good.test", "api.bad.test")
WHEEL = "egress_probe-1.0-py3-none-any.whl"
SERVER = r"""
import http.server, json, ssl, threading
WHEEL = "__WHEEL__"

class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/simple/"):
            page = f'<a href="/files/{WHEEL}">{WHEEL}</a>'.encode()
            return self.answer(page, "text/html")
        if self.path == f"/files/{WHEEL}":
            return self.answer(open(f"/certs/{WHEEL}", "rb").read(), "application/zip")
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "https://api.bad.test/landed")
            self.end_headers()
            return
        answer = {"host": self.headers.get("Host"), "path": self.path,
                  "port": self.server.server_port}
        if self.headers.get("Authorization"):
            answer["auth"] = self.headers["Authorization"]
        self.answer(json.dumps(answer).encode(), "application/json")
    def answer(self, body, kind):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

def serve(port, tls):
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Echo)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain("/certs/server.pem", "/certs/server.key")
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()

for port, tls in ((80, False), (8443, True)):
    threading.Thread(target=serve, args=(port, tls), daemon=True).start()
serve(443, True)
""".replace("__WHEEL__", WHEEL)


def _wheel(path: Path) -> None:
    """A one-module wheel for the package index the test server serves."""
    files = {
        "egress_probe.py": "ANSWER = 42\n",
        "egress_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: egress-probe\n"
        "Version: 1.0\n",
        "egress_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "egress_probe-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in {**files, "egress_probe-1.0.dist-info/RECORD": record}.items():
            wheel.writestr(name, text)


GET = """
import json, ssl, urllib.error, urllib.request
out = {}
context = ssl.create_default_context(cafile=ca)

def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as page:
            return [page.status, json.loads(page.read())]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()]
    except urllib.error.URLError as e:
        return ["refused", str(e.reason)]
"""


@dataclass
class Internet:
    network: str
    server_ip: str
    ca_pem: str
    ca_file: Path

    def prelude(self) -> str:
        """Kernel code: the test CA at ``ca``, an ``out`` dict and ``get(url, headers)``."""
        return f"ca = '/tmp/test-ca.pem'\nopen(ca, 'w').write({self.ca_pem!r})\n{GET}"

    def settings(self) -> dict[str, Any]:
        """The engine settings that send egress proxies to this internet."""
        return {
            "egress_allowed_domains": ALLOWED,
            "egress_network": self.network,
            "egress_upstream_ca": self.ca_file,
        }


def _certificates(folder: Path) -> str:
    """A test CA, and a certificate it signed for every test name; returns the CA's PEM."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "egress test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in NAMES]), False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    for path in folder.iterdir():
        path.chmod(0o644)
    return ca.public_bytes(serialization.Encoding.PEM).decode()


@contextlib.contextmanager
def running_internet(folder: Path) -> Iterator[Internet]:
    """Start the server in ``folder`` (certificates, wheel); remove it and its network after."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    ca_pem = _certificates(folder)
    _wheel(folder / WHEEL)
    (folder / WHEEL).chmod(0o644)
    client = docker.from_env()
    name = f"sandbox-engine-test-internet-{uuid.uuid4().hex[:8]}"
    network = client.networks.create(name, driver="bridge", internal=True)
    server = None
    try:
        server = client.containers.create(
            default_image_tag(Settings()),
            ["python3", "-c", SERVER],
            name=name,
            user="0:0",
            network=name,
            volumes={str(folder): {"bind": "/certs", "mode": "ro"}},
        )
        network.disconnect(server)
        network.connect(server, aliases=list(NAMES))
        server.start()
        server.reload()
        ip = server.attrs["NetworkSettings"]["Networks"][name]["IPAddress"]
        (folder / "ca.pem").write_text(ca_pem)
        yield Internet(name, ip, ca_pem, folder / "ca.pem")
    finally:
        if server is not None:
            server.remove(force=True)
        network.remove()
        client.close()
