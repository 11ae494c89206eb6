"""The E2B face: what the unmodified ``e2b`` and ``e2b-code-interpreter`` SDKs call, under one
prefix. Point both ``E2B_API_URL`` and ``E2B_SANDBOX_URL`` at ``http://HOST:PORT/e2b``.

The control plane (``/sandboxes``, ``/v2/sandboxes``, ``/health``) takes ``X-API-Key``: one of
the engine's API keys, shaped ``e2b_<hex>``. The sandbox plane routes on the ``E2b-Sandbox-Id``
header: the code interpreter (``/execute``, ``/contexts``) and envd (``/files``, ``/health``,
Connect calls to ``process.Process`` and ``filesystem.Filesystem``), which check the sandbox's
``X-Access-Token``. Errors are ``{"code", "message"}``, as E2B's; Connect calls answer in
Connect's error shape. Every route here is a translation onto ``engine.e2b``."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import math
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from .. import errors
from ..e2b import DEFAULT_CONTEXT, ENVD_VERSION, Context, E2BSandbox, E2BSandboxes
from ..e2b.commands import Command
from ..e2b.sandboxes import check_language, state_of
from ..errors import APIError
from ..results import ErrorInfo, OutputEvent
from ..sessions import Session
from . import connect_rpc
from .connect_rpc import ConnectError

log = logging.getLogger("engine.api")

CLIENT_ID = "sandbox-engine"
NDJSON = "application/x-ndjson"
MIME_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
}
NOT_SERVED = {
    "templates": "building and listing templates is not served: the templates are "
    "code-interpreter-v1 and base",
    "v2/templates": "building templates is not served",
    "v3/templates": "building templates is not served",
    "snapshots": "snapshots are not served; pause a sandbox and connect to resume it",
    "volumes": "volumes are not served",
    "secrets": "secrets are not served",
    "metrics": "sandbox metrics are not served",
    "logs": "sandbox logs are not served",
    "fork": "forking a sandbox is not served",
    "network": "changing a sandbox's network is not served: sandboxes have no network",
    "refreshes": "refreshes are not served; use the timeout route",
}
KEEPALIVE_DEFAULT = 50.0
CONNECT_SERVICES = ("process.Process", "filesystem.Filesystem")


def e2b_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


STATUS: list[tuple[type[Exception], int]] = [
    (errors.InvalidRequest, 400),
    (errors.AccessDenied, 401),
    (errors.NotFound, 404),
    (errors.SessionClosed, 404),
    (errors.Conflict, 409),
    (errors.SessionBusy, 409),
    (errors.QuotaExceeded, 403),
    (errors.LimitExceeded, 429),
    (errors.SandboxError, 503),
]


def error_of(exc: Exception) -> JSONResponse:
    if isinstance(exc, APIError):
        return e2b_error(exc.status, exc.message)
    if isinstance(exc, RequestValidationError):
        problem = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in problem["loc"] if p != "body")
        return e2b_error(400, f"{where}: {problem['msg']}" if where else str(problem["msg"]))
    if isinstance(exc, errors.SandboxFileError):
        status = connect_rpc.HTTP_STATUS.get(exc.reason, 500)
        return e2b_error(status, str(exc))
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return e2b_error(status, str(exc))
    if isinstance(exc, errors.StorageFull):
        return e2b_error(507, str(exc))
    if isinstance(exc, errors.EngineError):
        return e2b_error(500, str(exc))
    log.exception("E2B route failed", exc_info=exc)
    return e2b_error(500, "internal error")


class E2BRoute(APIRoute):
    """Every failure of an E2B route answers ``{"code", "message"}``, never the engine's
    OpenAI-shaped error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return error_of(exc)

        return handle


router = APIRouter(prefix="/e2b", tags=["e2b"], route_class=E2BRoute)


# --- dependencies ---


async def service(request: Request) -> E2BSandboxes:
    sandboxes: E2BSandboxes = request.app.state.e2b
    return sandboxes


async def api_tenant(request: Request) -> str:
    """The tenant of ``X-API-Key`` ("" with no keys configured)."""
    keys = request.app.state.keys
    if not keys.enabled:
        return ""
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        raise APIError(401, "missing API key: send X-API-Key: e2b_<hex>", "auth", "")
    tenant: str | None = keys.tenant(key)
    if tenant is None:
        raise APIError(401, "invalid API key", "auth", "")
    return tenant


def sandbox_id_of(request: Request) -> str:
    sandbox_id = request.headers.get("e2b-sandbox-id", "").strip()
    if not sandbox_id:
        raise APIError(400, "the E2b-Sandbox-Id header is required", "invalid", "")
    return sandbox_id


async def envd_sandbox(request: Request, e2b: ServiceDep) -> E2BSandbox:
    """The sandbox named by the headers, if ``X-Access-Token`` is its token."""
    return e2b.check_token(sandbox_id_of(request), request.headers.get("x-access-token"))


async def interpreter_sandbox(request: Request, e2b: ServiceDep) -> E2BSandbox:
    """The code interpreter's context routes carry the sandbox id and nothing else (the SDKs
    send no token there); a token that is sent must be the sandbox's."""
    token = request.headers.get("x-access-token")
    if token is not None:
        return e2b.check_token(sandbox_id_of(request), token)
    return e2b.find(sandbox_id_of(request))


ServiceDep = Annotated[E2BSandboxes, Depends(service)]
TenantDep = Annotated[str, Depends(api_tenant)]
EnvdSandbox = Annotated[E2BSandbox, Depends(envd_sandbox)]
InterpreterSandbox = Annotated[E2BSandbox, Depends(interpreter_sandbox)]


# --- the control plane ---


class NewSandbox(BaseModel):
    model_config = ConfigDict(extra="ignore")

    templateID: str
    timeout: int = Field(default=15, ge=1)
    metadata: dict[str, str] | None = None
    envVars: dict[str, str] | None = None
    secure: bool = True
    allow_internet_access: bool | None = None
    network: dict[str, Any] | None = None
    autoPause: bool = False
    mcp: dict[str, Any] | None = None
    volumeMounts: list[Any] | None = None


class NewSandboxV2(NewSandbox):
    timeout: int = Field(default=300, ge=1)


class Timeout(BaseModel):
    timeout: int = Field(ge=1)


class ConnectBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    timeout: int = Field(default=300, ge=1)


def _refuse_unserved(body: NewSandbox) -> None:
    if body.autoPause:
        raise errors.InvalidRequest("autoPause is not served; pause the sandbox yourself")
    if body.mcp:
        raise errors.InvalidRequest("MCP servers in the sandbox are not served")
    if body.volumeMounts:
        raise errors.InvalidRequest("volumes are not served")


def _time(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def created(record: E2BSandbox) -> dict[str, Any]:
    return {
        "templateID": record.template,
        "sandboxID": record.id,
        "clientID": CLIENT_ID,
        "envdVersion": ENVD_VERSION,
        "envdAccessToken": record.access_token,
        "trafficAccessToken": None,
        "domain": None,
    }


def listed(record: E2BSandbox, session: Session, request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "templateID": record.template,
        "sandboxID": record.id,
        "clientID": CLIENT_ID,
        "startedAt": _time(record.started_at),
        "endAt": _time(session.info.expires_at),
        "cpuCount": max(1, math.ceil(settings.cpus)),
        "memoryMB": session.spec.memory_limit_mb,
        "diskSizeMB": settings.data_size_mb,
        "state": state_of(session),
        "envdVersion": ENVD_VERSION,
        "metadata": record.metadata,
    }


@router.get("/health")
async def health(request: Request, e2b: ServiceDep) -> Response:
    """The control plane's health, or with ``E2b-Sandbox-Id`` envd's (204 while it runs)."""
    sandbox_id = request.headers.get("e2b-sandbox-id")
    if sandbox_id is None:
        return JSONResponse({"message": "Health check successful"})
    try:
        e2b.find(sandbox_id)
    except errors.NotFound:
        return e2b_error(502, f"The sandbox {sandbox_id} was not found")
    return Response(status_code=204)


@router.post("/sandboxes", status_code=201)
async def create_sandbox(body: NewSandbox, e2b: ServiceDep, tenant: TenantDep) -> dict[str, Any]:
    _refuse_unserved(body)
    policy = e2b.policy(body.allow_internet_access, body.network)
    record = await e2b.create(
        tenant, body.templateID, body.timeout, body.metadata, body.envVars, policy
    )
    return created(record)


@router.post("/v2/sandboxes", status_code=201)
async def create_sandbox_v2(
    body: NewSandboxV2, e2b: ServiceDep, tenant: TenantDep
) -> dict[str, Any]:
    """What the SDKs call: the same, but a sandbox lives 300 s unless ``timeout`` says."""
    return await create_sandbox(body, e2b, tenant)


@router.get("/sandboxes/{sandbox_id}")
async def get_sandbox(
    sandbox_id: str, request: Request, e2b: ServiceDep, tenant: TenantDep
) -> dict[str, Any]:
    record = e2b.get(sandbox_id, tenant)
    detail = listed(record, e2b.session(record), request)
    egress = (record.network_policy or {}).get("type") == "allowlist"
    return {**detail, "envdAccessToken": record.access_token, "allowInternetAccess": egress}


@router.delete("/sandboxes/{sandbox_id}", status_code=204)
async def kill_sandbox(sandbox_id: str, e2b: ServiceDep, tenant: TenantDep) -> Response:
    await e2b.kill(sandbox_id, tenant)
    return Response(status_code=204)


@router.post("/sandboxes/{sandbox_id}/timeout", status_code=204)
async def set_timeout(
    sandbox_id: str, body: Timeout, e2b: ServiceDep, tenant: TenantDep
) -> Response:
    e2b.set_timeout(sandbox_id, tenant, body.timeout)
    return Response(status_code=204)


@router.post("/sandboxes/{sandbox_id}/pause", status_code=204)
async def pause_sandbox(sandbox_id: str, e2b: ServiceDep, tenant: TenantDep) -> Response:
    """Its variables and files are saved and its container removed; connect resumes it."""
    await e2b.pause(sandbox_id, tenant)
    return Response(status_code=204)


@router.post("/sandboxes/{sandbox_id}/connect")
@router.post("/v2/sandboxes/{sandbox_id}/connect")
@router.post("/sandboxes/{sandbox_id}/resume")
async def connect_sandbox(
    sandbox_id: str, e2b: ServiceDep, tenant: TenantDep, body: ConnectBody | None = None
) -> JSONResponse:
    """201 when it was paused and is resumed, 200 when it was running."""
    was = state_of(e2b.session(e2b.get(sandbox_id, tenant)))
    record = await e2b.connect(sandbox_id, tenant, (body or ConnectBody()).timeout)
    return JSONResponse(created(record), status_code=201 if was == "paused" else 200)


@router.get("/v2/sandboxes")
async def list_sandboxes(
    request: Request,
    e2b: ServiceDep,
    tenant: TenantDep,
    metadata: str | None = None,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    nextToken: str | None = None,
) -> JSONResponse:
    """Filtered by ``metadata`` (``k=v&k2=v2``, url-encoded) and ``state`` (``running``,
    ``paused``, comma-separated); the next page's token is in ``x-next-token``."""
    wanted = dict(urllib.parse.parse_qsl(metadata or "", keep_blank_values=True))
    states = {s.strip() for s in (state or "running,paused").split(",") if s.strip()}
    page = e2b.list(tenant, wanted, states, limit, nextToken)
    body = [listed(record, session, request) for record, session in page.sandboxes]
    headers = {"x-next-token": page.next_token} if page.next_token else {}
    return JSONResponse(body, headers=headers)


@router.get("/sandboxes")
async def list_running(request: Request, e2b: ServiceDep, tenant: TenantDep) -> JSONResponse:
    page = e2b.list(tenant, {}, {"running"}, 1000, None)
    return JSONResponse([listed(r, s, request) for r, s in page.sandboxes])


# --- the code interpreter ---


class ExecuteBody(BaseModel):
    code: str
    context_id: str | None = None
    language: str | None = None
    env_vars: dict[str, str] | None = None


class CreateContext(BaseModel):
    language: str | None = None
    cwd: str | None = None


def _now() -> str:
    return _time(datetime.datetime.now(datetime.UTC).timestamp())


def result_line(data: Mapping[str, Any], is_main: bool) -> dict[str, Any]:
    """A MIME bundle as E2B's result: ``text``, ``png``, ... and the rest under ``extra``."""
    line: dict[str, Any] = {"type": "result", "is_main_result": is_main}
    extra = {}
    for mime, value in data.items():
        name = MIME_FIELDS.get(mime)
        if name is not None:
            line[name] = value
        else:
            extra[mime] = value
    if extra:
        line["extra"] = extra
    return line


def error_line(error: ErrorInfo) -> dict[str, Any]:
    return {
        "type": "error",
        "name": error.name,
        "value": error.value,
        "traceback": "\n".join(error.traceback),
    }


def output_line(event: OutputEvent) -> dict[str, Any]:
    if event.type in ("stdout", "stderr"):
        return {"type": event.type, "text": event.text, "timestamp": _now()}
    if event.type == "display":
        return result_line(event.data, False)
    if event.type == "result":
        return result_line(event.data, True)
    if event.type == "error":
        return error_line(event.error)
    raise AssertionError(event.type)


async def execution_lines(
    e2b: E2BSandboxes, session: Session, body: ExecuteBody, timeout: float
) -> AsyncIterator[bytes]:
    """NDJSON: the output as it comes, then ``number_of_executions`` and
    ``end_of_execution``. A client that leaves interrupts the code."""
    lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(
        e2b.run_code(
            session, body.code, body.env_vars, lambda e: lines.put_nowait(output_line(e)), timeout
        )
    )
    try:
        while not task.done() or not lines.empty():
            getter = asyncio.ensure_future(lines.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield (json.dumps(getter.result()) + "\n").encode()
            else:
                getter.cancel()
        try:
            result = task.result()
        except errors.EngineError as exc:
            failure = ErrorInfo(name=type(exc).__name__, value=str(exc))
            yield (json.dumps(error_line(failure)) + "\n").encode()
        else:
            if result.execution_count is not None:
                count = {"type": "number_of_executions", "execution_count": result.execution_count}
                yield (json.dumps(count) + "\n").encode()
            if result.error is not None and result.status.value != "error":
                yield (json.dumps(error_line(result.error)) + "\n").encode()
        yield b'{"type": "end_of_execution"}\n'
    finally:
        if not task.done():  # the client left: the execution stops (Session.execute interrupts)
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({task})


@router.post("/execute")
async def execute(
    body: ExecuteBody, request: Request, record: EnvdSandbox, e2b: ServiceDep
) -> StreamingResponse:
    if body.context_id is not None and body.language is not None:
        raise errors.InvalidRequest("give context_id or language, not both")
    check_language(body.language)
    session = e2b.context_session(record, body.context_id)
    # E2B's timeout is the client's (it leaves, and that interrupts); the engine's longest
    # execution is the bound here, not its default of a minute.
    timeout = request.app.state.settings.max_timeout
    return StreamingResponse(execution_lines(e2b, session, body, timeout), media_type=NDJSON)


def context_json(context: Context) -> dict[str, str]:
    return {"id": context.id, "language": context.language, "cwd": context.cwd}


@router.post("/contexts")
async def create_context(
    body: CreateContext, record: InterpreterSandbox, e2b: ServiceDep
) -> dict[str, str]:
    return context_json(await e2b.create_context(record, body.language, body.cwd))


@router.get("/contexts")
async def list_contexts(record: InterpreterSandbox, e2b: ServiceDep) -> list[dict[str, str]]:
    return [context_json(c) for c in e2b.contexts(record)]


@router.delete("/contexts/{context_id}", status_code=204)
async def remove_context(context_id: str, record: InterpreterSandbox, e2b: ServiceDep) -> Response:
    if context_id == DEFAULT_CONTEXT:
        raise errors.InvalidRequest("the default context cannot be removed")
    await e2b.remove_context(record, context_id)
    return Response(status_code=204)


@router.post("/contexts/{context_id}/restart", status_code=204)
async def restart_context(context_id: str, record: InterpreterSandbox, e2b: ServiceDep) -> Response:
    await e2b.restart_context(record, context_id)
    return Response(status_code=204)


# --- envd: files over HTTP ---


@router.get("/files")
async def read_file(path: str, request: Request, record: EnvdSandbox, e2b: ServiceDep) -> Response:
    limit = request.app.state.settings.max_file_mb * 1024 * 1024
    data = await (await e2b.filesystem(record)).read(path, limit)
    return Response(data, media_type="application/octet-stream")


@router.post("/files")
async def write_files(
    request: Request, record: EnvdSandbox, e2b: ServiceDep, path: str | None = None
) -> list[dict[str, str]]:
    """Multipart: each ``file`` part is written to its filename, or to ``path`` if there is
    one part."""
    limit = request.app.state.settings.max_file_mb * 1024 * 1024
    form = await request.form(max_part_size=limit)
    parts = [p for p in form.getlist("file") if isinstance(p, UploadFile)]
    if not parts:
        raise errors.InvalidRequest("the body has no file part")
    fs = await e2b.filesystem(record)
    written = []
    for part in parts:
        target = path if path and len(parts) == 1 else part.filename
        if not target:
            raise errors.InvalidRequest("a file part has no path")
        entry = await fs.write(target, await part.read())
        written.append({"name": entry.data["name"], "type": "file", "path": entry.path})
    return written


# --- envd: Connect calls ---

ConnectHandler = Callable[[E2BSandbox, E2BSandboxes, dict[str, Any]], Awaitable[dict[str, Any]]]


async def fs_stat(record: E2BSandbox, e2b: E2BSandboxes, msg: dict[str, Any]) -> dict[str, Any]:
    return {"entry": (await (await e2b.filesystem(record)).stat(msg.get("path", ""))).data}


async def fs_list(record: E2BSandbox, e2b: E2BSandboxes, msg: dict[str, Any]) -> dict[str, Any]:
    fs = await e2b.filesystem(record)
    entries = await fs.list(msg.get("path", ""), int(msg.get("depth") or 1))
    return {"entries": [e.data for e in entries]}


async def fs_mkdir(record: E2BSandbox, e2b: E2BSandboxes, msg: dict[str, Any]) -> dict[str, Any]:
    return {"entry": (await (await e2b.filesystem(record)).make_dir(msg.get("path", ""))).data}


async def fs_move(record: E2BSandbox, e2b: E2BSandboxes, msg: dict[str, Any]) -> dict[str, Any]:
    fs = await e2b.filesystem(record)
    return {"entry": (await fs.move(msg.get("source", ""), msg.get("destination", ""))).data}


async def fs_remove(record: E2BSandbox, e2b: E2BSandboxes, msg: dict[str, Any]) -> dict[str, Any]:
    await (await e2b.filesystem(record)).remove(msg.get("path", ""))
    return {}


async def proc_list(record: E2BSandbox, e2b: E2BSandboxes, msg: dict[str, Any]) -> dict[str, Any]:
    return {"processes": [process_info(c) for c in record.commands.list()]}


async def proc_signal(record: E2BSandbox, e2b: E2BSandboxes, msg: dict[str, Any]) -> dict[str, Any]:
    command = find_command(record, msg.get("process") or {})
    await record.commands.signal(await e2b.sandbox(record), command, str(msg.get("signal", "")))
    return {}


UNARY: dict[str, ConnectHandler] = {
    "filesystem.Filesystem/Stat": fs_stat,
    "filesystem.Filesystem/ListDir": fs_list,
    "filesystem.Filesystem/MakeDir": fs_mkdir,
    "filesystem.Filesystem/Move": fs_move,
    "filesystem.Filesystem/Remove": fs_remove,
    "process.Process/List": proc_list,
    "process.Process/SendSignal": proc_signal,
}


def process_info(command: Command) -> dict[str, Any]:
    config = {"cmd": command.cmd, "args": command.args, "envs": command.envs, "cwd": command.cwd}
    info: dict[str, Any] = {"config": config, "pid": command.pid}
    if command.tag is not None:
        info["tag"] = command.tag
    return info


def find_command(record: E2BSandbox, selector: Mapping[str, Any]) -> Command:
    if "pid" in selector:
        return record.commands.find(pid=int(selector["pid"]))
    if "tag" in selector:
        return record.commands.find(tag=str(selector["tag"]))
    raise errors.InvalidRequest("process must name a pid or a tag")


async def _envd_record(request: Request, e2b: E2BSandboxes) -> E2BSandbox:
    try:
        return await envd_sandbox(request, e2b)
    except (errors.EngineError, APIError) as exc:
        if isinstance(exc, APIError):
            raise ConnectError("invalid_argument", exc.message) from None
        raise connect_rpc.from_engine(exc) from None


@router.post("/{service_name}/{method}", include_in_schema=False)
async def connect_call(
    service_name: str, method: str, request: Request, e2b: ServiceDep
) -> Response:
    if service_name not in CONNECT_SERVICES:
        return await not_served(f"{service_name}/{method}")
    name = f"{service_name}/{method}"
    if name == "process.Process/Start":
        return await start_process(request, e2b)
    handler = UNARY.get(name)
    try:
        if handler is None:
            raise ConnectError("unimplemented", f"{name} is not served by this engine")
        message = await connect_rpc.unary_request(request)
        record = await _envd_record(request, e2b)
        return connect_rpc.unary_response(await handler(record, e2b, message))
    except Exception as exc:
        return connect_rpc.error_response(connect_rpc.from_engine(exc))


async def start_process(request: Request, e2b: E2BSandboxes) -> Response:
    """Streams ``start{pid}``, the output (base64), then ``end{exitCode}``. Leaving early
    leaves the process running: SendSignal ends it."""
    try:
        message = await connect_rpc.stream_request(request)
        record = await _envd_record(request, e2b)
        if message.get("pty"):
            raise ConnectError("unimplemented", "a PTY is not served")
        config = message.get("process") or {}
        command = await record.commands.start(
            await e2b.sandbox(record),
            str(config.get("cmd", "")),
            [str(a) for a in config.get("args") or []],
            {str(k): str(v) for k, v in {**record.env_vars, **(config.get("envs") or {})}.items()},
            config.get("cwd"),
            message.get("tag"),
        )
    except Exception as exc:
        return connect_rpc.stream_error(connect_rpc.from_engine(exc))
    interval = _keepalive(request)
    return connect_rpc.stream_response(process_events(command, interval))


def _keepalive(request: Request) -> float:
    try:
        return max(1.0, float(request.headers.get("keepalive-ping-interval", "")))
    except ValueError:
        return KEEPALIVE_DEFAULT


async def process_events(command: Command, keepalive: float) -> AsyncIterator[dict[str, Any]]:
    yield {"event": {"start": {"pid": command.pid}}}
    try:
        while True:
            event = await command.next_event(keepalive)
            if event is None:
                yield {"event": {"keepalive": {}}}
            elif event.kind == "end":
                end: dict[str, Any] = {
                    "exitCode": event.exit_code,
                    "exited": event.exit_code <= 128,
                    "status": event.status,
                }
                if event.error:
                    end["error"] = event.error
                yield {"event": {"end": end}}
                return
            else:
                data = base64.b64encode(event.data).decode()
                yield {"event": {"data": {event.kind: data}}}
    finally:
        command.detach()


# --- what is not served ---


@router.api_route(
    "/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def not_served(path: str) -> JSONResponse:
    """E2B routes this engine does not serve, each with a message saying so."""
    parts = path.strip("/").split("/")
    for key in (parts[-1], parts[0], "/".join(parts[:2])):
        if key in NOT_SERVED:
            return e2b_error(501, NOT_SERVED[key])
    return e2b_error(404, f"/{path} is not a route of the E2B API served here")
