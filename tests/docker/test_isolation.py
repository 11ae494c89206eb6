"""Isolation facts, checked from inside the sandbox."""

from __future__ import annotations

from engine import ExecutionStatus, Session


async def run(session: Session, code: str) -> str:
    r = await session.execute(code, timeout=30)
    assert r.status is ExecutionStatus.OK, r
    return r.stdout.strip()


async def test_only_loopback_interface(session: Session) -> None:
    assert await run(session, "import os; print(sorted(os.listdir('/sys/class/net')))") == "['lo']"


async def test_connecting_out_fails(session: Session) -> None:
    code = """
import socket
for host in ("1.1.1.1", "8.8.8.8", "169.254.169.254"):
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((host, 80)); print("CONNECTED", host)
    except OSError as e:
        print("refused", type(e).__name__)
try:
    socket.getaddrinfo("example.com", 80); print("RESOLVED")
except OSError:
    print("no dns")
"""
    out = await run(session, code)
    assert "CONNECTED" not in out and "RESOLVED" not in out
    assert out.count("refused") == 3


async def test_root_is_not_writable(session: Session) -> None:
    code = """
for path in ("/x", "/etc/x", "/usr/x", "/opt/x"):
    try:
        open(path, "w"); print("WROTE", path)
    except OSError as e:
        print("denied", e.errno)
"""
    out = await run(session, code)
    assert "WROTE" not in out and out.count("denied") == 4


async def test_not_root_and_no_capabilities(session: Session) -> None:
    code = """
import os
status = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines())
print(os.getuid(), os.geteuid(), status['CapEff'].strip(), status['CapPrm'].strip(),
      status['NoNewPrivs'].strip())
"""
    uid, euid, cap_eff, cap_prm, nnp = (await run(session, code)).split()
    assert uid != "0" and euid != "0"
    assert int(cap_eff, 16) == 0 and int(cap_prm, 16) == 0
    assert nnp == "1"


async def test_environment_is_allow_listed(session: Session) -> None:
    out = await run(session, "import os; print(sorted(os.environ))")
    for leak in ("DOCKER_HOST", "SSL_CERT_FILE", "PIP_CERT", "SANDBOX_DATA_DIR"):
        assert leak not in out


async def test_memory_and_pids_limits_applied(session: Session) -> None:
    code = """
import resource
def read(p):
    try: return open(p).read().strip()
    except OSError: return '?'
print(read('/sys/fs/cgroup/memory/memory.limit_in_bytes'), read('/sys/fs/cgroup/memory.max'))
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], resource.getrlimit(resource.RLIMIT_CORE)[0])
"""
    lines = (await run(session, code)).splitlines()
    assert str(512 * 1024 * 1024) in lines[0]
    nofile, core = lines[1].split()
    assert int(nofile) <= 1024 and core == "0"


async def test_conn_folder_is_read_only_for_the_sandbox(session: Session) -> None:
    code = """
import os
for path in ("/conn/planted", "/conn/k1/planted"):
    try:
        os.symlink("/etc/passwd", path); print("PLANTED", path)
    except OSError as e:
        print("denied", e.errno)
"""
    out = await run(session, code)
    assert "PLANTED" not in out and out.count("denied") == 2


async def test_each_kernel_launch_gets_a_fresh_folder_locked_once_bound(session: Session) -> None:
    await session.restart()
    code = """
import os
print((sorted(os.listdir("/conn")), sorted(os.listdir("/conn/k2"))))
for path in ("/conn/k1/planted", "/conn/k2/planted", "/conn/k3", "/conn/k2.json"):
    try:
        os.symlink("/etc/passwd", path); print("PLANTED", path)
    except OSError as e:
        print("denied", e.errno)
try:
    open("/conn/k2.json", "a"); print("WROTE")
except OSError as e:
    print("denied", e.errno)
"""
    listing, *rest = (await run(session, code)).splitlines()
    # deadline: the time at which the sandbox stops itself, which only the engine writes
    expected = (["deadline", "k1", "k1.json", "k2", "k2.json"], [f"s-{n}" for n in range(1, 6)])
    assert listing == str(expected)
    assert rest == ["denied 13", "denied 13", "denied 13", "denied 17", "denied 13"]
