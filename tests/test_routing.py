"""The routes of a handler object: the `ocpp` library's route map, its lookups made once per class."""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, create_route_map, on
from ocpp.v16.enums import Action

from bridge.ocpp.routing import route_map


class Handlers:
    def __init__(self, name: str) -> None:
        self.name = name

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> str:
        return f"heartbeat {self.name}"

    @on(Action.data_transfer, skip_schema_validation=True)
    def on_data_transfer(self, **_: Any) -> str:
        return f"data {self.name}"

    @after(Action.data_transfer)
    def after_data_transfer(self, **_: Any) -> str:
        return f"after {self.name}"


def test_the_route_map_is_the_librarys_and_bound_to_each_object() -> None:
    first, second = Handlers("first"), Handlers("second")
    for handlers in (first, second):  # the second from what the first left for the class
        assert route_map(handlers) == create_route_map(handlers)
    routes = route_map(second)
    assert routes[Action.data_transfer]["_skip_schema_validation"] is True
    assert routes[Action.heartbeat]["_skip_schema_validation"] is False
    assert routes[Action.heartbeat]["_on_action"]() == "heartbeat second"
    assert routes[Action.data_transfer]["_after_action"]() == "after second"
    assert route_map(first)[Action.data_transfer]["_on_action"]() == "data first"
