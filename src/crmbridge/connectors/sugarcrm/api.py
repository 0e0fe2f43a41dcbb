"""What the reader, writer and discovery need from a Sugar API; one client per API family.

:class:`Api` is implemented by :class:`~crmbridge.connectors.sugarcrm.v4_1.V41Client` (legacy
v4_1 REST) and :class:`~crmbridge.connectors.sugarcrm.v10.V10Client` (REST v10/v11). Records
travel as plain dicts of wire values; filters as the API's own form, rendered by
:mod:`~crmbridge.connectors.sugarcrm.query`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from crmbridge.connectors.sugarcrm.discovery import ModuleMeta, RawModule
from crmbridge.connectors.sugarcrm.query import Node
from crmbridge.connectors.sugarcrm.settings import SugarCrmSettings
from crmbridge.connectors.sugarcrm.transport import Transport
from crmbridge.errors import RemoteError

log = logging.getLogger("crmbridge.connectors.sugarcrm")


@dataclass(frozen=True)
class Page:
    """One list call's answer: the first records matching the filter, in the order asked."""

    records: list[dict[str, Any]]
    #: records matching the filter, when the answer says (v4_1 does, v10 does not)
    total: int | None
    #: more records match than the page holds (False: this is the last page)
    more: bool


@dataclass(frozen=True)
class Op:
    """One record to write: ``create`` (with the id it gets), ``update`` or ``delete``."""

    kind: str
    id: str
    values: dict[str, Any] = field(default_factory=dict)  # wire values


@dataclass(frozen=True)
class Saved:
    """What the server said about one Op: the record id, or why it was not saved."""

    id: str | None
    error: str | None = None
    #: the answer leaves open whether the op was applied (HTTP 5xx to it): the writer reads
    #: the record to find out
    unknown: bool = False


class Api(abc.ABC):
    """One logged-in API client. Thread-safe: pages are fetched in parallel."""

    kind: ClassVar[str]

    def __init__(self, transport: Transport, settings: SugarCrmSettings) -> None:
        self.transport = transport
        self.settings = settings
        #: (module, field) -> whether the server accepts a filter on it (the connector shares
        #: its remembered answers here)
        self.filterable: dict[tuple[str, str], bool] = {}

    @property
    def connection(self) -> str:
        return self.transport.connection

    @property
    def parallel_reads(self) -> int:
        """How many pages a read may fetch at once to any gain. The server serialises the
        calls of one session (PHP's session lock), so parallel calls need a session each; a
        client that cannot have several sessions reads one page at a time."""
        return 1

    @abc.abstractmethod
    def login(self) -> None:
        """Log in (ConnectionFailedError with a clear message when refused)."""

    @abc.abstractmethod
    def logout(self) -> None:
        """Log out; never raises."""

    @abc.abstractmethod
    def server_info(self) -> dict[str, str]:
        """``flavor``, ``version`` and, on SuiteCRM, ``suitecrm_version``."""

    @abc.abstractmethod
    def modules(self) -> list[str]: ...

    @abc.abstractmethod
    def module(self, name: str) -> RawModule: ...

    @abc.abstractmethod
    def where(self, meta: ModuleMeta, node: Node | None) -> Any:
        """A filter in this API's form (None: no filter)."""

    def can_filter(self, meta: ModuleMeta, name: str) -> bool:
        """Does the server accept a filter on field ``name``? Asked once per field: a field
        the server refuses (error 40, HTTP 422) is then filtered locally."""
        known = self._known_filterable(meta, name)
        if known is not None:
            return known
        key = (meta.name, name)
        if key not in self.filterable:
            try:
                self._probe_filter(meta, name)
                self.filterable[key] = True
            except RemoteError as err:
                log.info(
                    "connection %r: %s.%s cannot be filtered on: %s",
                    self.connection,
                    meta.name,
                    name,
                    err,
                )
                self.filterable[key] = False
        return self.filterable[key]

    def _known_filterable(self, meta: ModuleMeta, name: str) -> bool | None:
        """True / False when known without asking the server; None: ask it."""
        return None

    @abc.abstractmethod
    def _probe_filter(self, meta: ModuleMeta, name: str) -> None:
        """A cheap call that filters on ``name``; RemoteError when the server refuses it."""

    @abc.abstractmethod
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
        """The first ``limit`` records matching ``where`` in ``order`` (ascending; fields
        the module has), from ``offset`` on. Paging is the caller's, by keyset
        (:mod:`.paging`): never by offset, which skips records when others change during the
        read; an offset only picks the points where parallel ranges of a read meet."""

    @abc.abstractmethod
    def count(self, meta: ModuleMeta, where: Any, *, deleted: bool = False) -> int | None: ...

    @abc.abstractmethod
    def save(self, module: str, ops: Sequence[Op]) -> list[Saved]:
        """Apply ``ops`` in one call; one Saved per op, in order.

        Raises AmbiguousWriteError when the call failed in a way that leaves open whether it
        was applied.
        """

    @abc.abstractmethod
    def link(self, module: str, record_id: str, link: str, related_ids: Sequence[str]) -> None:
        """Ask the server to link ``related_ids`` to the record through ``link``."""

    @abc.abstractmethod
    def linked(
        self, module: str, record_id: str, link: str, related_ids: Sequence[str]
    ) -> set[str]:
        """Which of ``related_ids`` are really linked to the record now."""
