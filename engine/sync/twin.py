"""What a blocking twin is made of: the async object it mirrors, the portal it waits on, and
methods made from the async ones, with their parameters and docs, that wait for the result."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from ..delegation import typed_property
from .portal import Portal

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F")


class Twin(Generic[F]):
    """The blocking twin of ``face``: every call waits on ``portal``."""

    def __init__(self, face: F, portal: Portal) -> None:
        self._face = face
        self._portal = portal


def blocking(
    method: Callable[Concatenate[Any, P], Awaitable[T]],
) -> Callable[Concatenate[Twin[Any], P], T]:
    """The twin of the async ``method``: awaits it on the engine's loop."""
    return cast(Callable[Concatenate[Twin[Any], P], T], _waiting(method, Portal.run))


def on_loop(method: Callable[Concatenate[Any, P], T]) -> Callable[Concatenate[Twin[Any], P], T]:
    """The twin of the plain ``method``: calls it on the engine's loop, where the core's
    objects are touched."""
    return cast(Callable[Concatenate[Twin[Any], P], T], _waiting(method, Portal.run_sync))


def _waiting(method: Callable[..., Any], run: Callable[..., Any]) -> Callable[..., Any]:
    name = method.__name__

    @functools.wraps(method)
    def wait(self: Twin[Any], /, *args: Any, **kwargs: Any) -> Any:
        return run(self._portal, getattr(self._face, name), *args, **kwargs)

    return wait


class nested(typed_property[T]):
    """The twin of the face's part of the same name: ``input_items = nested(SyncInputItems)``."""

    def __init__(self, twin: Callable[[Any, Portal], T]) -> None:
        super().__init__(self._read)
        self.__doc__ = None  # not the class's own
        self._twin = twin
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def _read(self, twin: Twin[Any]) -> T:
        return self._twin(getattr(twin._face, self._name), twin._portal)
