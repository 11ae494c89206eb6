"""Sandbox backends: places to run a kernel, locked down. Docker now; Kubernetes later."""

from .base import KernelLaunch, Sandbox, SandboxBackend, SandboxSpec

__all__ = ["KernelLaunch", "Sandbox", "SandboxBackend", "SandboxSpec"]
