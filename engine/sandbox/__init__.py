"""Sandbox backends: places to run a kernel, locked down. Docker now; Kubernetes later."""

from .base import Sandbox, SandboxBackend, SandboxSpec

__all__ = ["Sandbox", "SandboxBackend", "SandboxSpec"]
