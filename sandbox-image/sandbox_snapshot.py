"""Saves a kernel's user namespace for a pause, and loads it back on resume.

It runs inside the sandbox only: a snapshot is bytes that the session's own code shaped, so it is
unpickled nowhere else, and only in a sandbox of the session's own tenant. The engine stores the
file as opaque bytes with a checksum and hands it back unchanged.

The file holds one record per name, pickled by dill through one shared memo, so that two names
bound to one object are still one object after the load. A name that cannot be pickled (an open
socket, a live thread, a generator) is left out and listed; after such a failure the memo starts
afresh, and the loader does the same at that record. Modules are saved as their import names.
Functions and classes defined in the notebook are saved by value, and their globals are the live
namespace again once loaded. The index goes at the end, after the records:
``MAGIC, records..., index (JSON), index length (8 bytes, big-endian)``.
"""

import importlib
import io
import json
import os
import re
import types

MAGIC = b"SANDBOX-SNAPSHOT-1\n"
_IPYTHON_NAMES = re.compile(r"_+|_i+|_i\d+|_\d+|_[iod]h|__builtins?__|In|Out|exit|quit")
_ERROR_CHARS = 200


def _shell():
    return get_ipython()  # type: ignore[name-defined]  # noqa: F821


def _user_names(shell):
    """The names the user made: not IPython's own, nor the kernel's start-up ones."""
    hidden = shell.user_ns_hidden
    for name, value in list(shell.user_ns.items()):
        if _IPYTHON_NAMES.fullmatch(name) or (name in hidden and hidden[name] is value):
            continue
        yield name, value


def _why(exc):
    return f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]


def save(path, max_bytes):
    """Write the namespace to ``path``; print a JSON report. Over ``max_bytes``, write nothing."""
    import dill

    shell = _shell()
    modules, records, unsaved = {}, [], {}
    if os.path.lexists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(MAGIC)
        pickler = dill.Pickler(f, protocol=5)
        reset = False
        for name, value in _user_names(shell):
            if isinstance(value, types.ModuleType):
                modules[name] = value.__name__
                continue
            start = f.tell()
            try:
                pickler.dump(value)
            except Exception as exc:  # anything a __reduce__ raises
                f.seek(start)
                f.truncate()
                pickler.clear_memo()
                reset = True
                unsaved[name] = _why(exc)
                continue
            records.append({"name": name, "at": start, "size": f.tell() - start, "reset": reset})
            reset = False
            if f.tell() > max_bytes:
                break
        size = f.tell()
        over = size > max_bytes
        if not over:
            index = json.dumps({"modules": modules, "records": records}).encode()
            f.write(index)
            f.write(len(index).to_bytes(8, "big"))
            size = f.tell()
    if over:
        os.unlink(path)
    report = {
        "saved": [r["name"] for r in records] if not over else [],
        "modules": sorted(modules) if not over else [],
        "unsaved": unsaved,
        "bytes": size,
        "over_cap": over,
    }
    print(json.dumps(report))


class _Feed:
    """The file an unpickler reads: one record's bytes at a time (its memo outlives a record)."""

    def __init__(self):
        self.buf = io.BytesIO()

    def read(self, n=-1):
        return self.buf.read(n)

    def readinto(self, b):
        return self.buf.readinto(b)

    def readline(self):
        return self.buf.readline()


def load(path):
    """Put the namespace saved at ``path`` back, delete the file, and print a JSON report."""
    import dill

    shell = _shell()
    ns = shell.user_ns
    failed, loaded = {}, []
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as f:
            data = f.read()
    finally:
        if os.path.lexists(path):
            os.unlink(path)
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise ValueError("not a snapshot")
    length = int.from_bytes(data[-8:], "big")
    index = json.loads(data[-8 - length : -8])
    for name, module in index["modules"].items():
        try:
            ns[name] = importlib.import_module(module)
        except Exception as exc:
            failed[name] = _why(exc)
    feed = _Feed()
    unpickler = dill.Unpickler(feed)
    view = memoryview(data)
    for record in index["records"]:
        if record["reset"]:  # a fresh memo (clearing one keeps its count of entries)
            unpickler = dill.Unpickler(feed)
        feed.buf = io.BytesIO(view[record["at"] : record["at"] + record["size"]])
        try:
            ns[record["name"]] = unpickler.load()
        except Exception as exc:
            failed[record["name"]] = _why(exc)
        else:
            loaded.append(record["name"])
    print(json.dumps({"loaded": loaded, "modules": sorted(index["modules"]), "failed": failed}))
