"""The OCTT cases of the local authorization list (reference §9: TC_042_2, TC_043, TC_043_1, TC_043_2,
TC_043_3, and TC_008 for its use), each against the strict central system with the daemon in-process,
asserting the frames on the wire in order."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from bridge.store import FILENAME, Store
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of

Step = tuple[str, str, dict[str, Any]]  # (who sent it, the action or "<action>.conf", payload)


async def mark(cs: StrictCentralSystem) -> int:
    """Where the wire is now, once the charge point's last call is answered: `wire(cs, since)` is what
    follows."""
    await cs.wait_until(lambda: cs.link("CP-1").open_call_from_cp is None, what="the last call answered")
    return len(cs.link("CP-1").frames)


def wire(cs: StrictCentralSystem, since: int = 0, leave_out: tuple[str, ...] = ("Heartbeat",)) -> list[Step]:
    """The frames of CP-1's connection since `since`, in order: calls and their answers, each side's."""
    steps: list[Step] = []
    for f in cs.link("CP-1").frames[since:]:
        m = f.message if f.message is not None else json.loads(f.raw)  # a raw frame is kept as text
        who = "cs" if f.direction == "out" else "cp"
        if m[0] == 2:
            if m[2] not in leave_out:
                steps.append((who, m[2], m[3]))
        elif f.action not in leave_out:
            steps.append((who, f"{f.action}.conf" if m[0] == 3 else f"{f.action}.error", m[2]))
    return steps


async def send(cs: StrictCentralSystem, version: int, kind: str, listed: list[dict[str, Any]]) -> str:
    """SendLocalList through the central system's library; the status answered."""
    answer = await cs.call("CP-1", call.SendLocalList(list_version=version, update_type=kind,
                                                      local_authorization_list=listed))  # fmt: skip
    return str(answer.status)


async def raw_call(
    cs: StrictCentralSystem, unique_id: str, action: str, payload: dict[str, Any]
) -> list[Any]:
    """A CALL written as it is (the library would add an empty localAuthorizationList); its answer."""
    await cs.send_raw("CP-1", json.dumps([2, unique_id, action, payload]))
    return await cs.answer_of("CP-1", unique_id)


def entries(*tags: str, status: str = "Accepted") -> list[dict[str, Any]]:
    return [{"id_tag": t, "id_tag_info": {"status": status}} for t in tags]


async def test_tc_042_2_an_empty_full_list_reports_version_0(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)):
            await ready(cs)
            # A list first, so that 0 means "emptied", not "never had one".
            await send(cs, 4, "Full", entries("TAG-1"))
            since = await mark(cs)
            sent = await raw_call(cs, "tc-042-2-a", "SendLocalList", {"listVersion": 1, "updateType": "Full"})
            version = await cs.call("CP-1", call.GetLocalListVersion())
        cs.assert_clean()
    assert sent == [3, "tc-042-2-a", {"status": "Accepted"}] and version.list_version == 0
    assert wire(cs, since) == [
        ("cs", "SendLocalList", {"listVersion": 1, "updateType": "Full"}),
        ("cp", "SendLocalList.conf", {"status": "Accepted"}),
        ("cs", "GetLocalListVersion", {}),
        ("cp", "GetLocalListVersion.conf", {"listVersion": 0}),
    ]


async def test_tc_043_full_then_differential_and_a_listed_tag_charges(tmp_path: Path) -> None:
    """Full (A, B), then Differential (C added, B removed); C then starts without an Authorize
    (LocalPreAuthorize), and after a restart too (the list is persisted)."""
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp={"LocalPreAuthorize": True})
        async with running(config) as daemon:
            await ready(cs)
            since = await mark(cs)
            first = await send(cs, 1, "Full", entries("A", "B"))
            second = await send(cs, 2, "Differential", [*entries("C"), {"id_tag": "B"}])
            version = await cs.call("CP-1", call.GetLocalListVersion())
            sim = sim_of(daemon)
            sim.plug()
            sim.tap("c")  # any case: idTags compare case-insensitively
            start = await cs.wait_for_call("CP-1", "StartTransaction")
        cs.assert_clean()
    assert (first, second, version.list_version) == ("Accepted", "Accepted", 2)
    steps = wire(cs, since)
    assert steps[:6] == [
        ("cs", "SendLocalList", {"listVersion": 1, "updateType": "Full", "localAuthorizationList": [
            {"idTag": "A", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "B", "idTagInfo": {"status": "Accepted"}},
        ]}),
        ("cp", "SendLocalList.conf", {"status": "Accepted"}),
        ("cs", "SendLocalList", {"listVersion": 2, "updateType": "Differential", "localAuthorizationList": [
            {"idTag": "C", "idTagInfo": {"status": "Accepted"}}, {"idTag": "B"},
        ]}),
        ("cp", "SendLocalList.conf", {"status": "Accepted"}),
        ("cs", "GetLocalListVersion", {}),
        ("cp", "GetLocalListVersion.conf", {"listVersion": 2}),
    ]  # fmt: skip
    actions = [action for who, action, _ in steps[6:] if who == "cp" and not action.endswith(".conf")]
    assert "Authorize" not in actions and actions[-1] == "StartTransaction"
    assert start["idTag"] == "c"


async def test_tc_043_1_not_supported_while_local_auth_list_enabled_is_false(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)):
            await ready(cs)
            since = await mark(cs)
            changed = await cs.call(
                "CP-1", call.ChangeConfiguration(key="LocalAuthListEnabled", value="false")
            )
            sent = await send(cs, 1, "Full", entries("A"))
            version = await cs.call("CP-1", call.GetLocalListVersion())
        cs.assert_clean()
    assert changed.status == "Accepted" and sent == "NotSupported" and version.list_version == 0
    assert [(who, action) for who, action, _ in wire(cs, since)] == [
        ("cs", "ChangeConfiguration"), ("cp", "ChangeConfiguration.conf"),
        ("cs", "SendLocalList"), ("cp", "SendLocalList.conf"),
        ("cs", "GetLocalListVersion"), ("cp", "GetLocalListVersion.conf"),
    ]  # fmt: skip


async def test_tc_043_2_version_bookkeeping_and_version_mismatch(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)):
            await ready(cs)
            since = await mark(cs)
            answers: list[Any] = []
            for version, kind, tag in ((2, "Full", "A"), (5, "Differential", "B"), (4, "Differential", "C")):
                answers.append(await send(cs, version, kind, entries(tag)))
                answers.append((await cs.call("CP-1", call.GetLocalListVersion())).list_version)
        cs.assert_clean()
    assert answers == [
        "Accepted", 2, "Accepted", 5, "VersionMismatch", 5,
    ]  # fmt: skip
    assert [(who, action) for who, action, _ in wire(cs, since)] == [
        (who, action)
        for _ in range(3)
        for who, action in (("cs", "SendLocalList"), ("cp", "SendLocalList.conf"),
                            ("cs", "GetLocalListVersion"), ("cp", "GetLocalListVersion.conf"))
    ]  # fmt: skip


async def test_tc_043_3_failed_when_the_list_cannot_be_set(tmp_path: Path) -> None:
    """Two states in which the charge point fails to set a list (Full, listVersion 2): more entries
    than SendLocalListMaxLength (10,000), and a store that refuses the write (as a full disk would).
    Each time the list stays as it was."""
    Store.open(tmp_path / "state").close()
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)):
            await ready(cs)
            await send(cs, 1, "Full", entries("KEEP"))
            since = await mark(cs)
            too_many = entries(*(f"T{n:05d}" for n in range(10001)))
            over = await send(cs, 2, "Full", too_many)
            db = sqlite3.connect(tmp_path / "state" / FILENAME)
            with db:
                db.execute("CREATE TRIGGER refuse BEFORE INSERT ON local_list"
                           " BEGIN SELECT RAISE(ABORT, 'full'); END")  # fmt: skip
            db.close()
            refused = await send(cs, 2, "Full", entries("NEW"))
            version = await cs.call("CP-1", call.GetLocalListVersion())
        cs.assert_clean()
    assert (over, refused, version.list_version) == ("Failed", "Failed", 1)
    assert [(who, action, p.get("status")) for who, action, p in wire(cs, since)] == [
        ("cs", "SendLocalList", None), ("cp", "SendLocalList.conf", "Failed"),
        ("cs", "SendLocalList", None), ("cp", "SendLocalList.conf", "Failed"),
        ("cs", "GetLocalListVersion", None), ("cp", "GetLocalListVersion.conf", None),
    ]  # fmt: skip


async def test_tc_008_a_tag_of_the_local_list_starts_without_authorize_and_offline(tmp_path: Path) -> None:
    """LocalPreAuthorize: the listed tag starts at once, no Authorize. A Blocked one is refused locally,
    no Authorize either. Offline (LocalAuthorizeOffline), a listed tag starts though the cache never
    saw it, and after a restart the list is still there."""
    async with StrictCentralSystem() as cs:
        config = make_config(
            cs.url, tmp_path, ocpp={"LocalPreAuthorize": True, "LocalAuthorizeOffline": True}
        )
        async with running(config) as daemon:
            await ready(cs)
            await send(cs, 3, "Full", entries("GOOD") + entries("BAD", status="Blocked"))
            since = await mark(cs)
            sim = sim_of(daemon)
            sim.plug()
            sim.tap("BAD")
            sim.tap("GOOD")
            start = await cs.wait_for_call("CP-1", "StartTransaction")
        cs.assert_clean()
        assert start["idTag"] == "GOOD"
        sent = [action for who, action, _ in wire(cs, since) if who == "cp" and not action.endswith(".conf")]
        assert "Authorize" not in sent and sent[-1] == "StartTransaction"
        assert daemon.charge_points["CP-1"].authorizer.cache.get("GOOD") is None  # listed: never cached
        await cs.stop()  # the central system is gone: the bridge starts offline
        async with running(config) as again:
            cp = again.charge_points["CP-1"]
            assert cp.authorizer.local_list_version() == 3
            concluded: list[tuple[bool, str]] = []
            for tag in ("good", "bad"):
                cp.authorizer.authorize(
                    "CP-1/1", tag, lambda ok, how, _: concluded.append((ok, how)), cp.background.spawn
                )
    assert concluded == [(True, "offline, local list"), (False, "offline, local list")]


async def test_bad_send_local_list_frames_get_the_right_callerror_and_change_nothing(tmp_path: Path) -> None:
    """The schema layer answers a bad request with the CALLERROR naming the field (an unknown updateType,
    a listVersion that is a string, an expiryDate that is no date and time); the list stays."""
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            await send(cs, 1, "Full", entries("KEEP"))
            kind = await raw_call(cs, "bad-1", "SendLocalList", {"listVersion": 2, "updateType": "Partial"})
            version = await raw_call(cs, "bad-2", "SendLocalList", {"listVersion": "2", "updateType": "Full"})
            date = await raw_call(cs, "bad-3", "SendLocalList", {
                "listVersion": 2, "updateType": "Full",
                "localAuthorizationList": [{"idTag": "A", "idTagInfo": {"status": "Accepted",
                                                                        "expiryDate": "soon"}}],
            })  # fmt: skip
            kept = daemon.charge_points["CP-1"].authorizer.local_list_version()
        cs.assert_clean()
    assert kind[:3] == [4, "bad-1", "PropertyConstraintViolation"] and "updateType" in kind[3]
    assert version[:3] == [4, "bad-2", "TypeConstraintViolation"] and "listVersion" in version[3]
    assert date[:3] == [4, "bad-3", "PropertyConstraintViolation"]
    assert date[4] == {"field": "localAuthorizationList/0/idTagInfo/expiryDate", "rule": "format"}
    assert kept == 1
