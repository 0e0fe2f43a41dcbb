"""The Administration settings of the simulated server (Web Services and System Behaviour)."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from crmbridge.sandbox.sagecrm.entities import DEFAULT_WEB_ENTITIES

#: the record limit of a default install ("Maximum number of records to return")
DEFAULT_MAX_RECORDS = 100
#: releases in order, for features that arrived in one (orderBy: 2024 R2)
RELEASES = ("2019 R2", "2020 R1", "2021 R1", "2022 R2", "2023 R1", "2024 R1", "2024 R2")


@dataclass(frozen=True)
class Settings:
    """What an administrator sets, and how the server presents itself."""

    #: "Enable Web Services": off, every SOAP call is a fault
    web_services: bool = True
    #: "Make WSDL available to all": off, the WSDL address answers 404
    wsdl_available: bool = True
    #: "Maximum number of records to return" (0 = all in one answer)
    max_records: int = DEFAULT_MAX_RECORDS
    #: "Maximum size of request" in bytes (0 = no limit)
    max_request_size: int = 1_000_000
    #: "Dropdown fields as strings in WSDL": off, drop-downs are enumerations in the WSDL
    dropdowns_as_strings: bool = True
    #: dates in answers in UTC instead of server time
    dates_utc: bool = False
    #: entities with "Allow Web Service Access"
    web_entities: frozenset[str] = field(default_factory=lambda: DEFAULT_WEB_ENTITIES)
    #: the zone of the database's dates
    server_zone: str = "Europe/London"
    #: the release, e.g. "2024 R2" (REST orderBy needs 2024 R2 or later)
    version: str = "2024 R2"
    #: the install name in URLs: /{install}/eware.dll/..., /sdata/{install}j/...
    install: str = "crm"
    #: the namespace of SOAP answers (some installs answer in http://tempuri.org/)
    answer_namespace: str = "http://tempuri.org/type"
    #: consecutive wrong passwords that lock a user (0: never)
    lockout_after: int = 3
    #: rights the users' security profiles withhold: (logon, entity, action) with action
    #: "insert", "edit" or "delete" (e.g. ``("clerk", "company", "delete")``)
    denied: frozenset[tuple[str, str, str]] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.server_zone)

    @property
    def wire_zone(self) -> ZoneInfo:
        """The zone of the dates in answers."""
        return ZoneInfo("UTC") if self.dates_utc else self.zone

    @property
    def version_string(self) -> str:
        return f"Sage CRM {self.version}"

    def has_release(self, release: str) -> bool:
        """Whether this server is ``release`` or later."""
        known = {r: n for n, r in enumerate(RELEASES)}
        return known.get(self.version, len(RELEASES)) >= known[release]
