"""Which handler answers an incoming CALL, with the answer checked on both sides.

The `ocpp` library's `@on`/`@after` routing over our handler objects (one per feature profile, their
routes merged), with the 1.6 answers the library gets wrong (OCPP-J Table 7): an action OCPP 1.6
does not define is NotImplemented, a 1.6 action this charge point has no handler for NotSupported.
A payload is checked against its schema (unless the handler opts out) before a number beyond range
is named, so a type error is named as such first; our own answer is checked too, so that a bug of
ours never reaches the wire.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

from ocpp.charge_point import camel_to_snake_case
from ocpp.routing import create_route_map
from ocpp.v16.enums import Action

from bridge.ocpp import schema
from bridge.ocpp.errors import ErrorCode, OcppError
from bridge.ocpp.wire import to_wire

KNOWN_ACTIONS = frozenset(a.value for a in Action)


# Per handler class: action -> the route's entries, a method by its name (bound per object below).
_SHAPES: dict[type, dict[str, dict[str, tuple[bool, Any]]]] = {}


def route_map(handler: object) -> dict[str, dict[str, Any]]:
    """The library's `create_route_map(handler)`, whose attribute lookups (one per decorated name of
    every class, most of them failing) are made once per class: 5,000 connections made them all."""
    shape = _SHAPES.get(type(handler))
    if shape is None:
        shape = _SHAPES[type(handler)] = {
            action: {key: (callable(value), value.__name__ if callable(value) else value)
                     for key, value in entries.items()}
            for action, entries in create_route_map(handler).items()
        }  # fmt: skip
    return {
        action: {
            key: getattr(handler, value) if method else value for key, (method, value) in entries.items()
        }
        for action, entries in shape.items()
    }


class Routes:
    """The `@on` and `@after` handlers of one connection, by action."""

    def __init__(self, handlers: object) -> None:
        # One handler object per feature profile (bridge.ocpp.handlers); their routes are merged when
        # the first CALL comes: most connections of a boot are never sent one.
        self._handlers = handlers
        self._merged: dict[str, dict[str, Any]] | None = None

    @property
    def _routes(self) -> dict[str, dict[str, Any]]:
        if self._merged is None:
            handlers = self._handlers
            groups = handlers if isinstance(handlers, list | tuple) else [handlers]
            self._merged = {}
            for group in groups:
                self._merged.update(route_map(group))
        return self._merged

    async def dispatch(
        self, action: str, payload: dict[str, Any], beyond_range: str | None = None
    ) -> dict[str, Any]:
        """The wire answer of the `@on` handler of `action`; OcppError: the CALLERROR to send instead."""
        if action not in KNOWN_ACTIONS:
            raise OcppError(ErrorCode.NOT_IMPLEMENTED, f"{action} is not an OCPP 1.6 action")
        route = self._routes.get(action, {})
        handler = route.get("_on_action")
        if handler is None:
            raise OcppError(ErrorCode.NOT_SUPPORTED, f"{action} is not supported by this charge point")
        if not route.get("_skip_schema_validation", False):
            error = schema.violation(schema.CALL, action, payload)
            if error is not None:
                raise error
        if beyond_range is not None:  # after the schema: a type error is named as such first
            raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, beyond_range)
        result = handler(**camel_to_snake_case(payload))
        if inspect.isawaitable(result):
            result = await result
        wire = to_wire(result)
        # Our own answers are checked too: a bug here must not reach the wire.
        error = schema.violation(schema.CALLRESULT, action, wire)
        if error is not None:
            raise RuntimeError(f"our {action} answer breaks the schema: {error.description}")
        return wire

    def after(self, action: str, payload: dict[str, Any]) -> Awaitable[Any] | None:
        """Run the `@after` hook of `action` once its answer is sent; what it awaits is returned,
        for the caller to run as a task (a hook may itself send a CALL)."""
        hook = self._routes.get(action, {}).get("_after_action")
        if hook is None:
            return None
        result = hook(**camel_to_snake_case(payload))
        return result if inspect.isawaitable(result) else None
