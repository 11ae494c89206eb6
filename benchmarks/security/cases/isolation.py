"""Isolation: the host's files, /proc and /sys, secrets, privileges, namespaces, devices."""

from __future__ import annotations

import time

from engine import ExecutionStatus

from .. import hostside
from ..harness import KEYS, Context
from ..model import ISOLATION, Case, Verdict, all_denied, brief, code_case

# Each probe prints `name=ALLOWED:<what>` when the action worked, `name=denied:<errno>` if not.
PRELUDE = """
import ctypes, errno, os, signal, socket, subprocess
libc = ctypes.CDLL(None, use_errno=True)

def report(name, fn):
    try:
        what = fn()
    except OSError as e:
        why = errno.errorcode.get(e.errno or 0) or type(e).__name__
        print(f"{name}=denied:{why}")
    except Exception as e:
        print(f"{name}=denied:{type(e).__name__}")
    else:
        print(f"{name}=ALLOWED:{str(what)[:60]!r}")

def c(ret):
    if ret == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret

def check(bad, what, why):
    if bad:
        return what
    raise PermissionError(errno.EPERM, why)

def read(path, n=64):
    if os.path.isdir(path):
        return os.listdir(path)
    with open(path, 'rb') as f:
        return f.read(n)

def write(path, data):
    with open(path, 'w') as f:
        f.write(data)
    return 'written'
"""


def probe(name: str, attack: str, expected: str, body: str, quick: bool = False) -> Case:
    return code_case(name, ISOLATION, attack, expected, PRELUDE + body, all_denied, quick=quick)


HOST_FILES = """
for name, path in [
    ('host-sentinel', '@SENTINEL@'),
    ('host-sentinel-dir', os.path.dirname('@SENTINEL@')),
    ('engine-db', '@DATA_DIR@/engine.db'),
    ('engine-blobs', '@DATA_DIR@/files/blobs'),
    ('docker-lib', '/var/lib/docker'),
    ('host-shadow-via-proc1', '/proc/1/root/etc/shadow'),
    ('image-shadow', '/etc/shadow'),
    ('root-home', '/root'),
    ('host-home-work', '/work'),
]:
    report(name, lambda: read(path))
found = []
for pid in [p for p in os.listdir('/proc') if p.isdigit()]:
    for leaf in ('environ', 'cmdline'):
        try:
            if b'@MARKER@' in read(f'/proc/{pid}/{leaf}', 1 << 20):
                found.append(f'{pid}/{leaf}')
        except OSError:
            pass
report('host-marker-anywhere', lambda: check(found, found, 'marker not found'))
"""

PROC = """
report('read-kcore', lambda: read('/proc/kcore'))
report('write-sysrq-trigger', lambda: write('/proc/sysrq-trigger', 'h'))
report('write-core-pattern', lambda: write('/proc/sys/kernel/core_pattern', '|/tmp/x'))
report('write-hostname', lambda: write('/proc/sys/kernel/hostname', 'pwned'))
report('read-pid1-environ', lambda: read('/proc/1/environ'))
report('read-pid1-mem', lambda: read('/proc/1/mem'))
report('list-pid1-root', lambda: read('/proc/1/root'))
report('lower-oom-score', lambda: write('/proc/self/oom_score_adj', '-1000'))
report('kill-pid1', lambda: os.kill(1, signal.SIGKILL))
def host_pids():
    pids = [p for p in os.listdir('/proc') if p.isdigit()]
    uids = {os.stat(f'/proc/{p}').st_uid for p in pids if os.path.exists(f'/proc/{p}')}
    bad = len(pids) > 40 or uids - {10001, 10002}
    return check(bad, (len(pids), sorted(uids)), f'{len(pids)} pids, uids {sorted(uids)}')
report('see-host-processes', host_pids)
"""

SYS = """
import glob
cg = glob.glob('/sys/fs/cgroup/memory/memory.limit_in_bytes')
cg += glob.glob('/sys/fs/cgroup/memory.max')
report('raise-memory-limit', lambda: write(cg[0], str(1 << 40)) if cg else read('/nonexistent'))
pids = glob.glob('/sys/fs/cgroup/pids/pids.max') + glob.glob('/sys/fs/cgroup/pids.max')
report('raise-pids-limit', lambda: write(pids[0], 'max') if pids else read('/nonexistent'))
ra = glob.glob('/sys/fs/cgroup/*/release_agent')
report('write-release-agent', lambda: write(ra[0], '/tmp/x') if ra else read('/nonexistent'))
nr = glob.glob('/sys/fs/cgroup/*/notify_on_release')
report('write-notify-on-release', lambda: write(nr[0], '1'))
report('write-uevent-helper', lambda: write('/sys/kernel/uevent_helper', '/tmp/x'))
report('write-thp', lambda: write('/sys/kernel/mm/transparent_hugepage/enabled', 'never'))
report('write-lo-mtu', lambda: write('/sys/class/net/lo/mtu', '1400'))
report('list-kernel-debug', lambda: check(os.listdir('/sys/kernel/debug'), 'debugfs', 'empty'))
report('read-firmware', lambda: read('/sys/firmware') or read('/nonexistent'))
"""

ENV = """
import os, glob
host_names = {'DOCKER_HOST', 'SSL_CERT_FILE', 'PIP_CERT', 'REQUESTS_CA_BUNDLE', 'HTTPS_PROXY',
              'HTTP_PROXY', 'https_proxy', 'http_proxy', 'SANDBOX_BENCH_HOST_SECRET', 'PWD',
              'SANDBOX_API_KEYS', 'SANDBOX_DATA_DIR', 'SUDO_USER', 'SSH_AUTH_SOCK'}
def leaked():
    hits = sorted(k for k in os.environ if k in host_names or k.startswith('SANDBOX_'))
    blobs = [open('/proc/self/environ', 'rb').read()]
    for path in glob.glob('/proc/[0-9]*/environ'):
        try:
            blobs.append(open(path, 'rb').read())
        except OSError:
            pass
    for secret in (b'@MARKER@', b'@KEY@'):
        if any(secret in b for b in blobs) or secret.decode() in repr(dict(os.environ)):
            hits.append(secret.decode()[:6] + '...')
    return check(hits, hits, 'nothing from the host')
report('host-environment', leaked)
"""

CAPS = """
status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines())
for key in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'):
    value = int(status.get(key, '0').strip(), 16)
    report(key, lambda: check(value != 0, hex(value), 'empty'))
PR_GET_SECCOMP, PR_GET_NO_NEW_PRIVS = 21, 39
nnp = libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
report('no-new-privs-off', lambda: check(nnp != 1, nnp, 'no_new_privs set'))
sec = libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0)
report('seccomp-off', lambda: check(sec != 2, sec, 'seccomp filter on'))
uid = os.getuid()
report('uid-root', lambda: check(uid == 0, uid, f'uid {uid}'))
"""

MOUNT = """
MS_REMOUNT, MS_BIND, MNT_DETACH = 32, 4096, 2
report('mount-tmpfs', lambda: c(libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None)))
report('remount-root-rw', lambda: c(libc.mount(None, b'/', None, MS_REMOUNT, None)))
report('bind-mount', lambda: c(libc.mount(b'/', b'/mnt/data', None, MS_BIND, None)))
report('umount-data', lambda: c(libc.umount2(b'/mnt/data', MNT_DETACH)))
report('mount-proc', lambda: c(libc.mount(b'proc', b'/tmp', b'proc', 0, None)))
"""

UNSHARE = """
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x20000, 0x10000000, 0x40000000, 0x20000000
report('unshare-user', lambda: c(libc.unshare(CLONE_NEWUSER)))
report('unshare-mount', lambda: c(libc.unshare(CLONE_NEWNS)))
report('unshare-net', lambda: c(libc.unshare(CLONE_NEWNET)))
report('unshare-user-mount', lambda: c(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)))
def setns():
    fd = os.open('/proc/1/ns/mnt', os.O_RDONLY)
    return c(libc.setns(fd, 0))
report('setns-pid1-mnt', setns)
def unshare_cmd():
    r = subprocess.run(['unshare', '-r', 'id', '-u'], capture_output=True, text=True)
    if r.returncode:
        raise PermissionError(errno.EPERM, r.stderr.strip()[:40])
    return r.stdout
report('unshare-binary', unshare_cmd)
"""

PTRACE = """
PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206
report('ptrace-attach-pid1', lambda: c(libc.ptrace(PTRACE_ATTACH, 1, None, None)))
report('ptrace-seize-pid1', lambda: c(libc.ptrace(PTRACE_SEIZE, 1, None, None)))
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
buf = ctypes.create_string_buffer(16)
local, remote = iovec(ctypes.addressof(buf), 16), iovec(0x400000, 16)
report('process-vm-readv-pid1', lambda: c(libc.process_vm_readv(1, ctypes.byref(local), 1,
                                                                ctypes.byref(remote), 1, 0)))
report('read-pid1-mem', lambda: read('/proc/1/mem'))
"""

SETUID = """
report('setuid-0', lambda: os.setuid(0))
report('setgid-0', lambda: os.setgid(0))
report('setresuid-0', lambda: os.setresuid(0, 0, 0))
report('setgroups-0', lambda: os.setgroups([0]))
def suid_mount():
    r = subprocess.run(['mount', '-t', 'tmpfs', 'none', '/tmp'], capture_output=True, text=True)
    if r.returncode:
        raise PermissionError(errno.EPERM, r.stderr.strip()[:40])
    return 'mounted'
report('setuid-binary-mount', suid_mount)
def suid_files():
    found = []
    for d in ('/bin', '/usr/bin', '/sbin', '/usr/sbin'):
        for n in os.listdir(d):
            st = os.lstat(os.path.join(d, n))
            if st.st_mode & 0o4000 and st.st_uid == 0:
                found.append(n)
    r = subprocess.run(['su', '-c', 'id -u', 'root'], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=10)
    root = r.returncode == 0 and r.stdout.strip() == '0'
    return check(root, found, f'{len(found)} setuid binaries, none elevates')
report('su-root', suid_files)
"""

WRITE_ROOT = """
import glob
for path in ('/x', '/etc/x', '/usr/bin/x', '/opt/sandbox/venv/x', '/var/x', '/conn/x'):
    report('write' + path.replace('/', '-'), lambda: write(path, 'x'))
report('mkdir-root', lambda: os.mkdir('/newdir'))
report('chmod-passwd', lambda: os.chmod('/etc/passwd', 0o666))
report('replace-python', lambda: os.rename('/opt/sandbox/venv/bin/python', '/tmp/p'))
for k in glob.glob('/conn/k*/'):
    report('write-conn-kernel-dir', lambda: write(k + 'x', 'x'))
    report('plant-symlink-conn', lambda: os.symlink('/etc/passwd', k + 'planted'))
    for s in glob.glob(k + 's-*')[:1]:
        report('replace-kernel-socket', lambda: os.rename(s, s + '.old'))
report('chmod-conn', lambda: os.chmod('/conn', 0o777))
"""

DOCKER_SOCKET = """
for path in ('/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock',
             '/var/run/docker/containerd/containerd.sock', '/run/podman/podman.sock'):
    def connect():
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        return 'connected'
    report('unix' + path.replace('/', '-'), connect)
for host, port in (('127.0.0.1', 2375), ('127.0.0.1', 2376), ('172.17.0.1', 2375)):
    def tcp():
        s = socket.create_connection((host, port), timeout=2)
        return 'connected'
    report(f'tcp-{host}:{port}', tcp)
"""

DEVICES = """
import stat
for dev in ('/dev/mem', '/dev/kmem', '/dev/port', '/dev/sda', '/dev/vda', '/dev/nvme0n1',
            '/dev/kmsg', '/dev/fuse', '/dev/net/tun', '/dev/dri/card0'):
    report('open' + dev.replace('/', '-'), lambda: read(dev, 1))
report('mknod-disk', lambda: os.mknod('/tmp/disk', 0o600 | stat.S_IFBLK, os.makedev(8, 0)))
report('mknod-mem', lambda: os.mknod('/tmp/mem', 0o600 | stat.S_IFCHR, os.makedev(1, 1)))
report('mknod-in-data', lambda: os.mknod('/mnt/data/mem', 0o600 | stat.S_IFCHR, os.makedev(1, 1)))
def extra_devices():
    allowed = {'null', 'zero', 'full', 'random', 'urandom', 'tty', 'console', 'pts', 'ptmx',
               'shm', 'mqueue', 'fd', 'stdin', 'stdout', 'stderr', 'core'}
    extra = sorted(set(os.listdir('/dev')) - allowed)
    return check(extra, extra, 'only the standard pseudo-devices')
report('unexpected-devices', extra_devices)
"""

SYSCALLS = """
libc.syscall.restype = ctypes.c_long
calls = {'keyctl': 250, 'add_key': 248, 'request_key': 249, 'bpf': 321,
         'perf_event_open': 298, 'userfaultfd': 323, 'kexec_load': 246, 'init_module': 175,
         'finit_module': 313, 'delete_module': 176, 'swapon': 167, 'reboot': 169, 'acct': 163,
         'settimeofday': 164, 'clock_settime': 227, 'pivot_root': 155, 'chroot': 161,
         'open_by_handle_at': 304, 'iopl': 172, 'ioperm': 173, 'lookup_dcookie': 212,
         'mount_setattr': 442, 'fsopen': 430, 'move_mount': 429}
for name, nr in calls.items():
    def call():
        if name == 'chroot':
            return c(libc.syscall(nr, b'/tmp'))
        if name == 'reboot':
            return c(libc.syscall(nr, 0xfee1dead, 672274793, 0x4321fedc, None))
        return c(libc.syscall(nr, 0, 0, 0, 0, 0))
    report(name, call)
"""

PIDS = """
def visible():
    out = []
    for p in [p for p in os.listdir('/proc') if p.isdigit()]:
        try:
            out.append((int(p), os.stat(f'/proc/{p}').st_uid,
                        open(f'/proc/{p}/comm').read().strip()))
        except OSError:
            pass
    return out
procs = visible()
others = [x for x in procs if x[1] not in (10001, 10002)]
report('foreign-processes',
       lambda: check(others, others, f'{len(procs)} processes, all sandbox uids'))
report('signal-pid1', lambda: os.kill(1, signal.SIGTERM))
holders = [p for p, u, _ in procs if u == 10002]
report('signal-holder', lambda: [os.kill(p, signal.SIGKILL) for p in holders] or check(
    False, '', 'no holder process visible'))
"""


async def kill_all_from_kernel(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(
        "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\n"
        "except ProcessLookupError:\n    print('nothing to signal')\nprint('alive')"
    )
    end = time.perf_counter()
    info = await hostside.inspect(session)
    running = bool(info["State"]["Running"])
    ok = r.status is ExecutionStatus.OK and "alive" in r.stdout and running
    return Verdict(
        ok,
        f"kill(-1, SIGKILL) from the kernel: {brief(r)}; container running={running} "
        "(PID 1 belongs to another uid; Linux spares the caller)",
        session,
        end,
    )


async def kill_all_from_child(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'import os; os.kill(-1, 9)'])\nprint('alive')",
        timeout=30,
    )
    end = time.perf_counter()
    info = await hostside.inspect(session)
    running = bool(info["State"]["Running"])
    ok = (
        r.status is ExecutionStatus.CRASHED
        and r.error is not None
        and r.error.name == "KernelDied"
        and running
    )
    return Verdict(
        ok,
        f"a child's kill(-1, SIGKILL) ends the kernel: {brief(r)}; container running={running}",
        session,
        end,
    )


CASES = [
    probe(
        "read-host-files",
        "read the host's files: the engine database, blobs, a host sentinel, /proc/1/root",
        "none of them exists or opens inside the sandbox; the host marker appears nowhere",
        HOST_FILES,
    ),
    probe(
        "proc-probes",
        "/proc/kcore, sysrq-trigger, core_pattern, PID 1's environ and mem, oom_score_adj",
        "denied: masked, read-only, or another uid; only the sandbox's own processes visible",
        PROC,
    ),
    probe(
        "sys-probes",
        "raise own cgroup limits, write release_agent, uevent_helper, sysfs knobs",
        "sysfs and cgroupfs are read-only; firmware and debugfs masked",
        SYS,
    ),
    probe(
        "environment-secrets",
        "look for host variables, the API keys and a host secret in every process environment",
        "the environment is allow-listed: nothing from the host",
        ENV.replace("@KEY@", KEYS[0]),
        quick=True,
    ),
    probe(
        "capabilities",
        "read own capabilities, no_new_privs, seccomp mode and uid",
        "all capability sets empty, no_new_privs set, seccomp filtering, non-root",
        CAPS,
        quick=True,
    ),
    probe(
        "mount-via-ctypes",
        "mount(2) a tmpfs, remount / read-write, bind-mount, umount /mnt/data, mount proc",
        "EPERM: no CAP_SYS_ADMIN, seccomp",
        MOUNT,
    ),
    probe(
        "unshare-via-ctypes",
        "unshare(2) user, mount and net namespaces; setns into PID 1's; unshare -r",
        "EPERM: Docker's seccomp profile and no capabilities",
        UNSHARE,
    ),
    probe(
        "ptrace-via-ctypes",
        "ptrace attach/seize PID 1, process_vm_readv, /proc/1/mem",
        "EPERM: PID 1 runs as another uid, no CAP_SYS_PTRACE",
        PTRACE,
    ),
    probe(
        "setuid",
        "setuid(0), setgid(0), setgroups, a setuid-root mount, su",
        "EPERM; no_new_privs makes setuid binaries run unprivileged",
        SETUID,
    ),
    probe(
        "write-root-filesystem",
        "write to /, /etc, /usr, the venv, /conn; replace a kernel socket; chmod /conn",
        "read-only root (EROFS); /conn and its kernel folder read-only for the sandbox",
        WRITE_ROOT,
    ),
    probe(
        "docker-socket",
        "connect to the Docker and containerd sockets, and to dockerd over TCP",
        "no socket is mounted; no network to reach TCP",
        DOCKER_SOCKET,
    ),
    probe(
        "devices",
        "open /dev/mem, disks, kmsg, fuse, tun; mknod devices",
        "only the standard pseudo-devices exist; mknod is refused",
        DEVICES,
    ),
    probe(
        "dangerous-syscalls",
        "keyctl, bpf, perf_event_open, userfaultfd, kexec_load, init_module, open_by_handle_at...",
        "every one refused (seccomp or missing capability)",
        SYSCALLS,
    ),
    probe(
        "pid-namespace",
        "list every process, signal PID 1 and the container's holder process",
        "only the sandbox's processes are visible; PID 1 and its holder cannot be signalled",
        PIDS,
    ),
    Case(
        "kill-minus-one",
        ISOLATION,
        "os.kill(-1, SIGKILL) from the kernel",
        "kills nothing that matters: PID 1 runs as another uid; the container stays up",
        kill_all_from_kernel,
    ),
    Case(
        "kill-minus-one-from-child",
        ISOLATION,
        "a child process runs kill(-1, SIGKILL), which reaches the kernel",
        "KernelDied is reported, a new kernel starts, the container stays up",
        kill_all_from_child,
    ),
]
