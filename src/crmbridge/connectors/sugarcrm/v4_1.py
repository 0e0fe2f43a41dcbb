"""Client of the legacy v4_1 REST API (``{base}/service/v4_1/rest.php``).

Every call is a form POST of ``method``, ``input_type=JSON``, ``response_type=JSON`` and
``rest_data``. We send ``rest_data`` as a JSON *array*, the arguments in the order of the PHP
signature: PHP 8 servers pass the keys of a JSON object as named arguments and answer HTTP 500
with an empty body to any key that is not exactly the PHP parameter name, and those names are
not always the documented ones (``login`` takes ``application``, not ``application_name``).
Positional arguments work on every version. Errors come back as HTTP 200 with an error
object as the whole body.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from crmbridge.connectors.sugarcrm import related
from crmbridge.connectors.sugarcrm.api import Api, Op, Page, Saved
from crmbridge.connectors.sugarcrm.discovery import ModuleMeta, RawField, RawModule
from crmbridge.connectors.sugarcrm.failures import (
    INVALID_SESSION,
    LOGIN_ERRORS,
    explain_v4_1_status,
    is_database_failure,
    login_failure,
    v4_1_error,
    v4_1_error_number,
)
from crmbridge.connectors.sugarcrm.query import Node, to_sql
from crmbridge.connectors.sugarcrm.sessions import SessionPool
from crmbridge.errors import ConnectionFailedError, CrmBridgeError, RemoteError

log = logging.getLogger("crmbridge.connectors.sugarcrm")

#: parameter names of each method, in the order of the PHP signature
PARAMETERS: dict[str, tuple[str, ...]] = {
    "login": ("user_auth", "application", "name_value_list"),
    "logout": ("session",),
    "get_server_info": (),
    "get_user_id": ("session",),
    "get_available_modules": ("session", "filter"),
    "get_module_fields": ("session", "module_name", "fields"),
    "get_entry_list": (
        "session",
        "module_name",
        "query",
        "order_by",
        "offset",
        "select_fields",
        "link_name_to_fields_array",
        "max_results",
        "deleted",
        "favorites",
    ),
    "get_entries_count": ("session", "module_name", "query", "deleted"),
    "set_entries": ("session", "module_name", "name_value_lists"),
    "set_relationship": (
        "session",
        "module_name",
        "module_id",
        "link_field_name",
        "related_ids",
        "name_value_list",
        "delete",
    ),
    "get_relationships": (
        "session",
        "module_name",
        "module_id",
        "link_field_name",
        "related_module_query",
        "related_fields",
        "related_module_link_name_to_fields_array",
        "deleted",
        "order_by",
        "offset",
        "limit",
    ),
}
#: fields every module has as plain columns (no need to ask whether they can be filtered)
NOT_SAVED = (
    "the CRM did not save this record and gave no reason (check the user's rights on the module)"
)
STANDARD_COLUMNS = frozenset(
    {"id", "date_entered", "date_modified", "deleted", "created_by", "modified_user_id"}
)


class V41Client(Api):
    """Logged-in v4_1 sessions: one per call in flight, up to ``concurrency`` (the server
    serialises the calls of one session, see :mod:`.sessions`); a session that expired is
    replaced by a new login and the call repeated once."""

    kind = "v4_1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoint = f"{self.settings.base_url}/service/v4_1/rest.php"
        self.sessions = SessionPool(
            self.settings.concurrency, self._login, self._logout, self.connection
        )

    @property
    def parallel_reads(self) -> int:
        return self.settings.concurrency

    # -- session --------------------------------------------------------------------------
    def login(self) -> None:
        self.sessions.start()

    def _login(self) -> str:
        """A new session id."""
        settings = self.settings
        secret = settings.password.get_secret_value()
        if settings.password_encryption == "plain":
            user_auth = {"user_name": settings.username, "password": secret, "encryption": "PLAIN"}
        else:
            digest = hashlib.md5(secret.encode("utf-8")).hexdigest()
            user_auth = {"user_name": settings.username, "password": digest}
        answer = self._post(
            "login",
            {"user_auth": user_auth, "application": settings.platform, "name_value_list": []},
        )
        number = v4_1_error_number(answer)
        if number in LOGIN_ERRORS:
            raise login_failure(number or 0, answer, self.connection, settings.username)
        if number is not None:
            raise v4_1_error(answer, method="login", context=self.transport.context())
        if not isinstance(answer, dict) or not answer.get("id"):
            raise ConnectionFailedError(
                f"the CRM at {self.settings.display_url} did not answer the login with a session",
                context=self.transport.context(),
            )
        return str(answer["id"])

    def logout(self) -> None:
        self.sessions.close()

    def _logout(self, session: str) -> None:
        try:
            self._post("logout", {"session": session}, retry=False)
        except CrmBridgeError as err:  # logging out is a courtesy; never fail a run on it
            log.info("connection %r: logout failed: %s", self.connection, err)

    def call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        object: str | None = None,
        query: str | None = None,
        changes: bool = False,
    ) -> Any:
        """``method`` with a session added; logs in again once if the session expired.

        ``query`` is the filter the call carries (for messages); ``changes``: it writes.
        """
        with self.sessions.lease() as session:
            answer = self._post(method, {"session": session.id, **params}, object, query, changes)
            if v4_1_error_number(answer) == INVALID_SESSION:
                log.info("connection %r: session expired; logging in again", self.connection)
                self.sessions.renew(session)
                args = {"session": session.id, **params}
                answer = self._post(method, args, object, query, changes)
        if v4_1_error_number(answer) is not None:
            raise v4_1_error(
                answer, method=method, context=self.transport.context(object), query=query
            )
        return answer

    def _post(
        self,
        method: str,
        params: dict[str, Any],
        object: str | None = None,
        query: str | None = None,
        changes: bool = False,
        retry: bool = True,
    ) -> Any:
        rest_data = [params[name] for name in PARAMETERS[method]]  # positional: see above
        response = self.transport.send(
            "POST",
            self.endpoint,
            what=method,
            object=object,
            changes=changes,
            explain=explain_v4_1_status,
            # a read refused by the database stays refused; a write that answers so may
            # well have been applied (the transport reports it as ambiguous)
            final=None if changes else is_database_failure,
            retry=retry,
            data={
                "method": method,
                "input_type": "JSON",
                "response_type": "JSON",
                "rest_data": json.dumps(rest_data),
            },
        )
        context = self.transport.context(object)
        if is_database_failure(response):
            detail = f" with the filter: {query}" if query else ""
            raise RemoteError(
                f"{method} failed{detail}: {explain_v4_1_status(response)}", context=context
            )
        if response.status_code != 200:
            raise RemoteError(f"{method}: {explain_v4_1_status(response)}", context=context)
        try:
            return response.json()
        except ValueError:
            text = " ".join(response.text.split())[:200]
            raise RemoteError(
                f"{method}: the answer of {self.settings.display_url} is not JSON (is it a "
                f"SugarCRM or SuiteCRM server?): {text!r}",
                context=context,
            ) from None

    # -- discovery ------------------------------------------------------------------------
    def server_info(self) -> dict[str, str]:
        answer = self._post("get_server_info", {})
        if not isinstance(answer, dict):
            raise RemoteError(
                "get_server_info: unexpected answer", context=self.transport.context()
            )
        return {k: str(v) for k, v in answer.items() if v not in (None, "")}

    def modules(self) -> list[str]:
        answer = self.call("get_available_modules", {"filter": "all"})
        return [str(m["module_key"]) for m in answer.get("modules") or []]

    def module(self, name: str) -> RawModule:
        answer = self.call("get_module_fields", {"module_name": name, "fields": []}, object=name)
        fields = [_raw_field(f) for f in _values(answer.get("module_fields"))]
        links = _values(answer.get("link_fields"))
        return RawModule(
            name,
            fields,
            {str(link["name"]): str(link.get("module") or "") for link in links},
            table=str(answer.get("table_name") or "") or None,
            relationships={str(lk["name"]): str(lk.get("relationship") or "") for lk in links},
        )

    # -- reading --------------------------------------------------------------------------
    def where(self, meta: ModuleMeta, node: Node | None) -> str:
        return "" if node is None else to_sql(node, meta)

    def _known_filterable(self, meta: ModuleMeta, name: str) -> bool | None:
        if name == "email1" or name in STANDARD_COLUMNS:
            return True
        return False if meta.column(name) is None else None

    def _probe_filter(self, meta: ModuleMeta, name: str) -> None:
        probe = f"{meta.table}.id IS NULL AND {meta.column(name)} IS NULL"
        params = {"module_name": meta.name, "query": probe, "deleted": 0}
        self.call("get_entries_count", params, object=meta.name)

    def list_page(
        self,
        meta: ModuleMeta,
        where: Any,
        fields: Sequence[str],
        limit: int,
        *,
        order: Sequence[str],
        deleted: bool = False,
        offset: int = 0,
    ) -> Page:
        # bare names: the server drops table-qualified ones silently (undefined order)
        order_by = ", ".join(f"{name} ASC" for name in order if meta.schema.has(name))
        links = related.wanted(meta, fields)
        params = {
            "module_name": meta.name,
            "query": where or "",
            "order_by": order_by,
            "offset": offset,
            "select_fields": related.own_fields(meta, fields),
            "link_name_to_fields_array": [
                {
                    "name": link,
                    "value": list(dict.fromkeys([*names, *related.order_fields(meta, link)])),
                }
                for link, names in links.items()
            ],
            "max_results": limit,
            "deleted": 1 if deleted else 0,
            "favorites": False,
        }
        answer = self.call("get_entry_list", params, object=meta.name, query=where or None)
        records = [_flatten(entry) for entry in answer.get("entry_list") or []]
        if links:
            _fill_related(meta, records, links, answer.get("relationship_list"))
        total = int(str(answer.get("total_count") or 0))
        return Page(records, total, bool(records) and offset + len(records) < total)

    def count(self, meta: ModuleMeta, where: Any, *, deleted: bool = False) -> int | None:
        params = {"module_name": meta.name, "query": where or "", "deleted": 1 if deleted else 0}
        answer = self.call("get_entries_count", params, object=meta.name, query=where or None)
        return int(str(answer.get("result_count") or 0))

    # -- writing --------------------------------------------------------------------------
    def save(self, module: str, ops: Sequence[Op]) -> list[Saved]:
        lists = [_name_value_list(op) for op in ops]
        params = {"module_name": module, "name_value_lists": lists}
        answer = self.call("set_entries", params, object=module, changes=True)
        ids = [str(i) for i in (answer or {}).get("ids") or [] if i]
        if len(ids) == len(ops) and all(ids[n] == op.id for n, op in enumerate(ops)):
            return [Saved(op.id) for op in ops]
        returned = set(ids)
        return [Saved(op.id) if op.id in returned else Saved(None, NOT_SAVED) for op in ops]

    def link(self, module: str, record_id: str, link: str, related_ids: Sequence[str]) -> None:
        params = {
            "module_name": module,
            "module_id": record_id,
            "link_field_name": link,
            "related_ids": list(related_ids),
            "name_value_list": [],
            "delete": 0,
        }
        self.call("set_relationship", params, object=module, changes=True)

    def linked(
        self, module: str, record_id: str, link: str, related_ids: Sequence[str]
    ) -> set[str]:
        params = {
            "module_name": module,
            "module_id": record_id,
            "link_field_name": link,
            "related_module_query": "",
            "related_fields": ["id"],
            "related_module_link_name_to_fields_array": [],
            "deleted": 0,
            "order_by": "",
            "offset": 0,
            "limit": False,
        }
        answer = self.call("get_relationships", params, object=module)
        found = {str(_flatten(e).get("id")) for e in answer.get("entry_list") or []}
        return found & set(related_ids)


def _values(container: Any) -> list[dict[str, Any]]:
    """The entries of a PHP array that JSON made an object, or a list when it was empty."""
    if isinstance(container, dict):
        return [v for v in container.values() if isinstance(v, dict)]
    if isinstance(container, list):
        return [v for v in container if isinstance(v, dict)]
    return []


def _raw_field(entry: dict[str, Any]) -> RawField:
    options = entry.get("options")
    keys = tuple(str(k) for k in options) if isinstance(options, dict) and options else None
    required = entry.get("required")
    return RawField(
        name=str(entry["name"]),
        type=str(entry.get("type") or "varchar"),
        length=None if entry.get("len") in (None, "") else str(entry["len"]),
        required=str(required).lower() in ("1", "true"),
        options=keys,
        label=str(entry.get("label") or "") or None,
    )


def _flatten(entry: dict[str, Any]) -> dict[str, Any]:
    """``{"id", "name_value_list": {name: {name, value}}}`` as ``{name: value}``."""
    values = entry.get("name_value_list") or {}
    items = values.values() if isinstance(values, dict) else values
    record = {str(nv["name"]): nv.get("value") for nv in items if isinstance(nv, dict)}
    record.setdefault("id", entry.get("id"))
    return record


def _fill_related(
    meta: ModuleMeta,
    records: list[dict[str, Any]],
    links: dict[str, list[str]],
    relationships: Any,
) -> None:
    """Related values from ``relationship_list`` (one entry per record, in the same order)."""
    entries = relationships if isinstance(relationships, list) else []
    for n, record in enumerate(records):
        found = _link_records(entries[n] if n < len(entries) else None)
        for link, names in links.items():
            chosen = related.first(found.get(link, []), related.order_fields(meta, link))
            related.fill(record, link, names, chosen)


def _link_records(entry: Any) -> dict[str, list[dict[str, Any]]]:
    """``{link: [related records]}`` of one relationship_list entry: v4_1 wraps it as
    ``{"link_list": [{"name", "records": [{"link_value": {name: {name, value}}}]}]}``; v4 had
    the list of links without the wrappers."""
    links = entry.get("link_list") if isinstance(entry, dict) else entry
    out: dict[str, list[dict[str, Any]]] = {}
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or not isinstance(link.get("name"), str):
            continue
        rows = []
        for item in link.get("records") or []:
            values = item.get("link_value", item) if isinstance(item, dict) else item
            rows.append(_flatten({"name_value_list": values}))
        out[link["name"]] = rows
    return out


def _name_value_list(op: Op) -> list[dict[str, Any]]:
    pairs: list[dict[str, Any]] = [{"name": "id", "value": op.id}]
    if op.kind == "create":
        pairs.append({"name": "new_with_id", "value": True})
    if op.kind == "delete":
        pairs.append({"name": "deleted", "value": 1})
    pairs += [{"name": k, "value": v} for k, v in op.values.items() if k != "id"]
    return pairs
