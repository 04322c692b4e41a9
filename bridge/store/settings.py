"""What the central system set that survives a reboot, per charge point: the authorization cache,
availability (ChangeAvailability), configuration keys and charging profiles (ERRATA 3.37)."""

from __future__ import annotations

from typing import Any

from bridge.store.base import StoreBase


class SettingsTables(StoreBase):
    """The per-charge-point settings tables (store thread)."""

    # -- the authorization cache ------------------------------------------------------
    def cache_entries(self, cp: str) -> list[tuple[str, str, str | None, str | None, str]]:
        """(id_tag, status, expiry, parent_id_tag, updated_at), oldest first."""
        rows = self._db.execute(
            "SELECT id_tag, status, expiry, parent_id_tag, updated_at FROM auth_cache WHERE charge_point = ?"
            " ORDER BY updated_at",
            (cp,),
        ).fetchall()
        return [tuple(r) for r in rows]

    def cache_put(
        self,
        cp: str,
        id_tag: str,
        status: str,
        expiry: str | None,
        parent: str | None,
        at: str,
        evicted: list[str],
    ) -> None:
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("DELETE FROM auth_cache WHERE charge_point = ? AND tag_key = ?", (cp, tag.casefold()))
            for tag in evicted
        ]
        statements.append((
            "INSERT INTO auth_cache (charge_point, tag_key, id_tag, status, expiry, parent_id_tag,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charge_point, tag_key) DO UPDATE SET"
            " id_tag = excluded.id_tag, status = excluded.status, expiry = excluded.expiry,"
            " parent_id_tag = excluded.parent_id_tag, updated_at = excluded.updated_at",
            (cp, id_tag.casefold(), id_tag, status, expiry, parent, at),
        ))  # fmt: skip
        self._write(True, statements)

    def cache_clear(self, cp: str) -> None:
        self._write(True, [("DELETE FROM auth_cache WHERE charge_point = ?", (cp,))])

    # -- availability (ChangeAvailability survives a reboot) ---------------------------
    def availability(self, cp: str) -> dict[int, bool]:
        rows = self._db.execute("SELECT connector, operative FROM availability WHERE charge_point = ?", (cp,))
        return {int(c): bool(o) for c, o in rows.fetchall()}

    def save_availability(self, cp: str, values: dict[int, bool]) -> None:
        self._write(True, [(
            "INSERT INTO availability (charge_point, connector, operative) VALUES (?, ?, ?)"
            " ON CONFLICT (charge_point, connector) DO UPDATE SET operative = excluded.operative",
            (cp, connector, int(operative)),
        ) for connector, operative in values.items()])  # fmt: skip

    # -- configuration keys set by the central system ------------------------------
    def config_values(self, cp: str) -> dict[str, str]:
        rows = self._db.execute("SELECT key, value FROM config_keys WHERE charge_point = ?", (cp,)).fetchall()
        return {k: v for k, v in rows}

    def save_config_value(self, cp: str, key: str, value: str) -> None:
        self._write(True, [(
            "INSERT INTO config_keys (charge_point, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT (charge_point, key) DO UPDATE SET value = excluded.value",
            (cp, key, value),
        )])  # fmt: skip

    # -- charging profiles (they survive a reboot, ERRATA 3.37) ------------------------
    def charging_profiles(self, cp: str) -> list[tuple[int, str, int]]:
        """(connector, profile JSON, received_at) per installed profile."""
        rows = self._db.execute(
            "SELECT connector, profile, received_at FROM charging_profiles WHERE charge_point = ?"
            " ORDER BY profile_id",
            (cp,),
        ).fetchall()
        return [(int(c), str(p), int(r)) for c, p, r in rows]

    def save_charging_profiles(self, cp: str, profiles: list[tuple[int, int, str, int]]) -> None:
        """Replace the installed set by (profile id, connector, JSON, received_at) rows, at once."""
        self._write(True, [("DELETE FROM charging_profiles WHERE charge_point = ?", (cp,))] + [(
            "INSERT INTO charging_profiles (charge_point, profile_id, connector, profile, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (cp, pid, connector, body, received_at),
        ) for pid, connector, body, received_at in profiles])  # fmt: skip

    # -- long-running jobs' records (firmware update, diagnostics upload) -----------------------
    def job_records(self, cp: str) -> dict[str, str]:
        """job name -> its record (JSON) as last saved."""
        rows = self._db.execute("SELECT job, record FROM job_records WHERE charge_point = ?", (cp,))
        return {str(job): str(record) for job, record in rows.fetchall()}

    def save_job_record(self, cp: str, job: str, record: str | None) -> None:
        """Keep `record` (JSON) as `job`'s state, durably; None: the job has none any more."""
        if record is None:
            self._write(True, [("DELETE FROM job_records WHERE charge_point = ? AND job = ?", (cp, job))])
            return
        self._write(True, [(
            "INSERT INTO job_records (charge_point, job, record) VALUES (?, ?, ?)"
            " ON CONFLICT (charge_point, job) DO UPDATE SET record = excluded.record",
            (cp, job, record),
        )])  # fmt: skip
