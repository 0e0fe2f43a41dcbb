"""What every request handler needs: the store, the sessions, the faults and the settings."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from crmbridge.sandbox.sugarcrm.faults import Faults
from crmbridge.sandbox.sugarcrm.sessions import Sessions
from crmbridge.sandbox.sugarcrm.store import Store
from crmbridge.sandbox.sugarcrm.vardefs import ModuleDef

#: The list page size of a default install (``list_max_entries_per_page``).
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Settings:
    """How the simulated server presents itself and which edition limits it applies."""

    flavor: str = "CE"
    version: str = "6.5.25"
    suitecrm_version: str | None = "7.14.6"
    max_list_limit: int | None = None  # Pro/Ent cap on page sizes; None = no cap (CE)
    duplicate_check: bool = False  # set_entries on Contacts returns an existing duplicate's id
    v10: bool = True
    session_lock: bool = True  # calls of one session are served one after another


@dataclass(frozen=True)
class Context:
    store: Store
    sessions: Sessions
    faults: Faults
    settings: Settings

    @property
    def modules(self) -> dict[str, ModuleDef]:
        """The server's modules (stock ones plus the Studio fields it was given)."""
        return self.store.modules

    def user(self, user_id: str) -> dict[str, Any]:
        """The users row of a logged-in user."""
        rows = self.store.query("SELECT * FROM users WHERE id = ?", (user_id,))
        return rows[0] if rows else {"id": user_id, "time_zone": "UTC", "user_name": ""}

    def user_zone(self, user_id: str) -> ZoneInfo:
        return ZoneInfo(self.user(user_id).get("time_zone") or "UTC")

    def check_password(self, user_name: str, password_md5: str) -> str | None:
        """The id of the active user with this name and md5 password hash, or None."""
        rows = self.store.query(
            "SELECT id, user_hash FROM users WHERE user_name = ? AND deleted = 0 "
            "AND status = 'Active'",
            (user_name,),
        )
        if rows and rows[0]["user_hash"] == password_md5.strip().lower():
            return str(rows[0]["id"])
        return None


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()
