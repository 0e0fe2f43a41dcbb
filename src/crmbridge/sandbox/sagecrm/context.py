"""What every request handler needs: the store, the sessions, the faults and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from crmbridge.sandbox.sagecrm.entities import ENTITIES, Entity
from crmbridge.sandbox.sagecrm.faults import Faults
from crmbridge.sandbox.sagecrm.problems import ApiError, not_web_enabled
from crmbridge.sandbox.sagecrm.sessions import Sessions
from crmbridge.sandbox.sagecrm.settings import Settings
from crmbridge.sandbox.sagecrm.store import Store


@dataclass
class Context:
    store: Store
    sessions: Sessions
    faults: Faults
    settings: Settings

    def entity(self, name: str | None) -> Entity:
        """The web-service-enabled entity called ``name`` (case-insensitive)."""
        entity = ENTITIES.get((name or "").strip().lower())
        if entity is None:
            raise ApiError(f"Entity '{name}' does not exist", 404)
        if entity.name not in self.settings.web_entities:
            raise not_web_enabled(entity.name)
        return entity

    def check_right(self, user_id: int, entity: Entity, action: str) -> None:
        """Raise ApiError (403) when the user's security profile withholds ``action``
        (insert, edit, delete) on ``entity``."""
        if not self.settings.denied:
            return
        user = self.store.user(user_id) or {}
        logon = str(user.get("user_logon") or "").lower()
        denied = {(u.lower(), e.lower(), a.lower()) for u, e, a in self.settings.denied}
        if (logon, entity.name, action) in denied:
            raise ApiError(
                f"User '{user.get('user_logon')}' has no right to {action} {entity.name} "
                "records (security profile)",
                403,
            )

    def check_password(self, logon: str, password: str) -> int:
        """The id of the user ``logon`` when ``password`` is right and the user may use web
        services; raises ApiError otherwise (counting wrong passwords towards a lockout)."""
        rows = self.store.query(
            "SELECT user_userid, user_password, user_webservice FROM Users "
            "WHERE user_logon = ? AND user_deleted IS NULL",
            (logon,),
        )
        limit = self.settings.lockout_after
        if limit and self.sessions.failures(logon) >= limit:
            raise ApiError(f"User '{logon}' is locked out after too many failed logons", 401)
        if not rows or rows[0]["user_password"] is None or rows[0]["user_password"] != password:
            count = self.sessions.failed_password(logon)
            if limit and count >= limit:
                raise ApiError(f"User '{logon}' is locked out after too many failed logons", 401)
            raise ApiError("Logon failed: invalid user name or password", 401)
        self.sessions.good_password(logon)
        if rows[0]["user_webservice"] != "Y":
            raise ApiError(f"User '{logon}' is not allowed to use web services", 403)
        return int(rows[0]["user_userid"])
