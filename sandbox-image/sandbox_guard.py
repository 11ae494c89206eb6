"""An IPython extension loaded into every sandbox kernel (see ipython_kernel_config.py).

After each cell it puts back the parts of the kernel's own machinery that the cell may have
closed or replaced (its output streams, hooks, display publisher, print, fds 1 and 2), so that
the next cell runs as in a fresh kernel. And it keeps every message the kernel sends well under
the engine's cap (SANDBOX_MAX_KERNEL_MESSAGE_MB): a huge print goes out in pieces, which the
engine folds into head and tail as usual, and a huge value or error message is cut to its head
and tail here. Both are courtesies for code that does these things by mistake; hostile code can
undo them, and then the engine's own checks restart the kernel.

It also trims costs ipykernel adds to every execution, without changing what comes out: a
flush of stdout and stderr with nothing buffered returns at once (ipykernel flushes each of them
twice per execution, every flush a round trip to its IOPub thread); the flush at the end of a
cell queues its output without waiting for that thread; a cell is transformed once, not twice;
and whether ``run_cell`` takes a ``cell_id`` is worked out once rather than by
``inspect.signature`` on every cell.
"""

import builtins
import operator
import os
import sys
import threading

_TRAPPED = {"exit", "quit", "get_ipython", "display"}
"""Builtins IPython itself swaps in and out around each cell."""
FIELD_CHARS = 4_000_000
"""The longest string a message carries (a stream's text goes in pieces of this size)."""
MIME_CHARS = 24_000_000
"""A display value longer than this is cut to its head and tail if it is text, else (an image of
some 18 MB) left out of its bundle."""


_cell_ended = [False]
"""Between the end of a cell's code and the start of the next one's."""


def load_ipython_extension(ip):
    kernel = getattr(ip, "kernel", None)
    _remember_accepted_parameters()
    forget_transform = _transform_once(ip)
    for stream in (sys.stdout, sys.stderr):
        _quick_flush(stream)
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}
    hooks = {"displayhook": sys.displayhook, "excepthook": sys.excepthook}
    shell = {"display_pub": ip.display_pub, "displayhook": ip.displayhook}
    names = {k: v for k, v in vars(builtins).items() if k not in _TRAPPED}
    # One comparison in C for the usual case, where the cell replaced none of them.
    current_names, original_names = operator.itemgetter(*names), tuple(names.values())

    def restore(*_):
        for name, original in streams.items():
            current = getattr(sys, name)
            if current is not original or getattr(original, "closed", False):
                setattr(sys, name, _working(original, name, getattr(ip, "kernel", kernel)))
                streams[name] = getattr(sys, name)
        for name, original in hooks.items():
            if getattr(sys, name) is not original:
                setattr(sys, name, original)
        for name, original in shell.items():
            if getattr(ip, name) is not original:
                setattr(ip, name, original)
        current = vars(builtins)
        try:
            untouched = current_names(current) == original_names
        except KeyError:  # one was deleted
            untouched = False
        if not untouched:
            for name, original in names.items():
                if current.get(name) is not original:
                    setattr(builtins, name, original)
        for fd in (1, 2):
            _reopen(fd)

    def cap_messages(*_):
        # The kernel is attached to the shell after extensions load: wrap its session lazily.
        session = getattr(getattr(ip, "kernel", None), "session", None)
        if session is not None and not getattr(session, "_sandbox_capped", False):
            _cap_messages(session)

    def cell_ends(*_):
        _cell_ended[0] = True
        forget_transform()

    def cell_starts(*_):
        _cell_ended[0] = False

    ip.events.register("pre_run_cell", cap_messages)
    ip.events.register("post_run_cell", restore)
    ip.events.register("pre_execute", cell_starts)
    ip.events.register("post_execute", cell_ends)


def _cap_messages(session):
    send = session.send

    def capped_send(stream, msg_or_type, content=None, parent=None, ident=None, *args, **kw):
        if not isinstance(msg_or_type, dict):
            return send(stream, msg_or_type, _capped(content), parent, ident, *args, **kw)
        msg = msg_or_type
        text = msg.get("content", {}).get("text")
        if msg.get("msg_type") == "stream" and isinstance(text, str) and len(text) > FIELD_CHARS:
            sent = None
            for start in range(0, len(text), FIELD_CHARS):
                piece = {**msg["content"], "text": text[start : start + FIELD_CHARS]}
                part = session.msg("stream", piece, parent=msg.get("parent_header"))
                sent = send(stream, part, None, None, ident, *args, **kw)
            return sent
        msg["content"] = _capped(msg.get("content"))
        return send(stream, msg, content, parent, ident, *args, **kw)

    session.send = capped_send
    session._sandbox_capped = True


def _capped(value, key=None, limit=FIELD_CHARS):
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        half = limit // 2
        dropped = len(value) - 2 * half
        return (
            f"{value[:half]}\n[... {dropped} characters dropped in the kernel ...]\n{value[-half:]}"
        )
    if isinstance(value, list):
        return [_capped(v) for v in value]
    if not isinstance(value, dict):
        return value
    if key == "data":  # a MIME bundle: an oversized image cannot be cut, only left out
        bundle = {}
        for mime, item in value.items():
            if isinstance(item, str) and len(item) > MIME_CHARS and mime != "text/plain":
                bundle.setdefault(
                    "text/plain", f"<{mime} output of {len(item)} characters left out>"
                )
                continue
            bundle[mime] = _capped(item, limit=MIME_CHARS)
        return bundle
    return {k: _capped(v, k) for k, v in value.items()}


def _working(stream, name, kernel):
    """``stream`` if it still works, or a new one like it (a closed OutStream stays closed)."""
    if not getattr(stream, "closed", False):
        return stream
    from ipykernel.iostream import OutStream

    return _quick_flush(OutStream(kernel.session, kernel.iopub_thread, name, watchfd=False))


def _quick_flush(stream):
    """``stream``, whose ``flush`` returns at once when it holds nothing to send, and at the end
    of a cell sends without waiting for the IOPub thread.

    ipykernel's flush hands the buffer to the IOPub thread and waits for it, so that output
    goes out before the reply and the idle status. With nothing buffered and no flush of that
    thread's under way, that wait orders nothing: the stream message of a flush that already
    took the buffer is queued before the counter falls, so anything sent after sees it first.
    At the end of a cell the kernel's main thread builds the message itself and queues it on
    that thread before the idle status, which keeps the order without the wait; within a cell
    the wait stays, so that code printing in a loop cannot queue faster than the thread sends.
    """
    flush, send = getattr(stream, "flush", None), getattr(stream, "_flush", None)
    if send is None or not hasattr(stream, "_buffers") or getattr(stream, "echo", None):
        return stream  # not the ipykernel OutStream this was written for
    sending = [0]
    # Taking the buffer and queueing its message happen as one step, whichever thread flushes.
    one_at_a_time = threading.Lock()

    def counted_send():
        with one_at_a_time:
            sending[0] += 1
            try:
                send()
            finally:
                sending[0] -= 1

    def quick_flush():
        if not (stream._buffers or stream._flush_pending or sending[0]):
            return
        if _cell_ended[0] and threading.current_thread() is threading.main_thread():
            counted_send()
        else:
            flush()

    stream._flush = counted_send
    stream.flush = quick_flush
    return stream


def _transform_once(ip):
    """ipykernel transforms a cell to ask whether it needs the event loop and, for nearly every
    cell, then calls ``run_cell`` without the result, which transforms it again: the second
    call for the same cell gets the first one's result. The returned function forgets it, at
    the end of each cell."""
    transform = ip.transform_cell
    last = []

    def transform_cell(raw_cell):
        if last:
            cell, transformed = last.pop()
            if cell is raw_cell:
                return transformed
        transformed = transform(raw_cell)
        last.append((raw_cell, transformed))
        return transformed

    ip.transform_cell = transform_cell
    return last.clear


def _remember_accepted_parameters():
    """ipykernel asks ``inspect.signature`` whether ``run_cell`` takes ``cell_id``, per cell."""
    try:
        from ipykernel import ipkernel
    except ImportError:
        return
    accepts = getattr(ipkernel, "_accepts_parameters", None)
    if accepts is None:
        return
    known = {}

    def remembered(meth, param_names):
        key = (getattr(meth, "__func__", meth), tuple(param_names))
        if key not in known:
            known[key] = accepts(meth, param_names)
        return known[key]

    ipkernel._accepts_parameters = remembered


def _reopen(fd):
    try:
        os.fstat(fd)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
