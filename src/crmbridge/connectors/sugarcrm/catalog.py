"""What a server has: its modules, their fields and links, found once and remembered.

The :class:`Catalog` asks the server only for what it does not know yet, and keeps every answer
in the connection's :class:`~crmbridge.connectors.sugarcrm.cache.DiscoveryCache`, so a run
whose modules were described by an earlier run costs no discovery call at all.

Links whose metadata names no module (SuiteCRM reports an empty ``module`` for many standard
links: Contacts ``accounts``, Leads ``accounts``, Notes ``accounts`` ...) are resolved through
their relationship: the module on the other side is the one that has a link with the same
relationship name. Only modules whose name or table appears in the relationship name
(``accounts_contacts``, ``account_leads``) are asked, so the cost stays bounded.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial

from crmbridge.connectors.sugarcrm.api import Api
from crmbridge.connectors.sugarcrm.cache import DiscoveryCache
from crmbridge.connectors.sugarcrm.discovery import (
    ModuleMeta,
    RawModule,
    build_meta,
    studio_hint,
    table_of,
    with_related,
)
from crmbridge.core.schema import unknown_name_error
from crmbridge.errors import ConfigError, ErrorContext, RemoteError

log = logging.getLogger("crmbridge.connectors.sugarcrm")


class Catalog:
    """The modules of one connection. Thread-safe."""

    def __init__(
        self,
        connection: str,
        api: Callable[[], Api],
        cache: DiscoveryCache,
        tables: Mapping[str, str],
    ) -> None:
        self.connection = connection
        self._api = api
        self.cache = cache
        self.tables = dict(tables)
        self._own: dict[str, ModuleMeta] = {}
        self._meta: dict[str, ModuleMeta] = {}
        self._lock = threading.RLock()

    def modules(self) -> list[str]:
        """The modules the user can see."""
        with self._lock:
            if self.cache.modules is None:
                self.cache.modules = self._api().modules()
            return list(self.cache.modules)

    def meta(self, module: str) -> ModuleMeta:
        """Everything known about ``module``, with the fields of related records
        ``<link>.<field>`` (one more description per module a link leads to)."""
        with self._lock:
            if module not in self._meta:
                own = self.own(module)
                visible = set(self.modules())
                linked = {
                    name: found
                    for name in sorted(set(own.links.values()) & visible)
                    if (found := self._linked(module, name)) is not None
                }
                self._meta[module] = with_related(own, linked)
            return self._meta[module]

    def own(self, module: str) -> ModuleMeta:
        """The module's own fields and links (links resolved), without related fields."""
        with self._lock:
            if module not in self._own:
                raw = self._raw(module)
                resolved = replace(raw, links=self._links(raw))
                hint = partial(self._hint, module)
                self._own[module] = build_meta(resolved, self.tables, hint)
            return self._own[module]

    def forget(self, why: str) -> None:
        """A metadata error: what was remembered is out of date (the next run asks again)."""
        self.cache.forget(why)

    # -- parts ----------------------------------------------------------------------------
    def _raw(self, module: str) -> RawModule:
        """The server's description of ``module`` (a ConfigError when it has none)."""
        if module in self.cache.described:
            return self.cache.described[module]
        modules = self.modules()
        if module not in modules and self.cache.remembered:
            self.forget(f"no module {module!r} among the remembered ones")
            self.cache.modules = modules = self._api().modules()
        if module not in modules:
            context = ErrorContext(connection=self.connection)
            raise unknown_name_error("module", module, modules, context=context)
        raw = self._api().module(module)
        self.cache.described[module] = raw
        return raw

    def _linked(self, module: str, linked: str) -> ModuleMeta | None:
        """The own meta of a module a link leads to; None when the server will not describe
        it (its related fields are then left out)."""
        try:
            return self.own(linked)
        except (ConfigError, RemoteError) as err:
            log.info(
                "connection %r: the fields of %s records related to %s are not offered: %s",
                self.connection,
                linked,
                module,
                err,
            )
            return None

    def _links(self, raw: RawModule) -> dict[str, str]:
        return {
            link: module or self._through_relationship(raw, link) or ""
            for link, module in raw.links.items()
        }

    def _through_relationship(self, raw: RawModule, link: str) -> str | None:
        """The module on the other side of ``link``'s relationship, or None."""
        relationship = raw.relationships.get(link) or ""
        if not relationship:
            return None
        for other in self.modules():
            if other == raw.name or not _named_in(relationship, other, self.tables):
                continue
            try:
                described = self._raw(other)
            except (ConfigError, RemoteError):
                continue
            if relationship in described.relationships.values():
                return other
        own = [n for n, r in raw.relationships.items() if r == relationship and n != link]
        if own:  # a relationship between records of one module (e.g. member accounts)
            return raw.name
        log.info(
            "connection %r: the module of %s link %r (relationship %r) is unknown; its "
            "related fields are not offered",
            self.connection,
            raw.name,
            link,
            relationship,
        )
        return None

    def _hint(self, module: str, name: str) -> str:
        """The end of the message for a field ``module`` lacks (see ModuleSchema)."""
        text = studio_hint(module, name)
        if self.cache.remembered:
            when = self.cache.since()
            self.forget(f"{module} has no field {name!r}")
            text += (
                f"; crmbridge had remembered the fields of {module} from {when} and asks the "
                "server again next time"
            )
        return text


def _named_in(relationship: str, module: str, tables: Mapping[str, str]) -> bool:
    """Whether ``relationship`` (``accounts_contacts``, ``account_leads``) names ``module``
    by its name or table, plural or singular."""
    words = {module.lower(), table_of(RawModule(module, []), tables)}
    words |= {w[:-1] for w in words if w.endswith("s")}
    text = f"_{relationship.lower()}_"
    return any(re.search(rf"_{re.escape(w)}_", text) for w in words if w)
