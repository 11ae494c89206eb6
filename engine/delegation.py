"""Read-through properties: an object that shows another's attribute as its own."""

from __future__ import annotations

import operator
from typing import Any, Generic, Self, TypeVar, overload

T = TypeVar("T")


class typed_property(property, Generic[T]):
    """A read-only property whose value the type checker knows as ``T``."""

    @overload
    def __get__(self, instance: None, owner: type, /) -> Self: ...

    @overload
    def __get__(self, instance: Any, owner: type | None = None, /) -> T: ...

    def __get__(self, instance: Any, owner: type | None = None, /) -> Any:
        return super().__get__(instance, owner)


class through(typed_property[T]):
    """A read-only property that reads the dotted ``path`` from its object:
    ``settings = through[Settings]("runtime.settings")``."""

    def __init__(self, path: str, doc: str | None = None) -> None:
        super().__init__(operator.attrgetter(path))
        self.__doc__ = doc  # else the class's own, or attrgetter's, would show as the value's
