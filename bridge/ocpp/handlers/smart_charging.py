"""The SmartCharging profile: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule."""

from __future__ import annotations

from typing import Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.ocpp.ports import SmartChargingControl


class SmartChargingHandlers:
    def __init__(self, smart: SmartChargingControl) -> None:
        self._smart = smart

    @on(Action.set_charging_profile)
    async def set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        status = self._smart.set_profile(connector_id, snake_to_camel_case(cs_charging_profiles))
        await self._smart.flush()  # on disk before it is said (profiles survive a reboot)
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    async def clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        status = self._smart.clear(id, connector_id, charging_profile_purpose, stack_level)
        await self._smart.flush()
        return call_result.ClearChargingProfile(status=status)

    @on(Action.get_composite_schedule)
    def get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        answer = self._smart.composite_schedule(connector_id, duration, charging_rate_unit)
        return call_result.GetCompositeSchedule(
            status=answer["status"],
            connector_id=answer.get("connectorId"),
            schedule_start=answer.get("scheduleStart"),
            charging_schedule=answer.get("chargingSchedule"),
        )
