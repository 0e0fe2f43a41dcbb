"""Fields of related records (``<link>.<field>``, e.g. an Opportunity's ``contacts.email1``).

A read that names such fields gets, for each record, the values of **one** related record per
link: the first by ``date_entered, id`` (the oldest). All fields of one link come from that
same record, and keep their types. A record with no related record through the link gets
nulls. How each API fetches them:

* v4_1: ``link_name_to_fields_array`` in the same ``get_entry_list`` call (no extra call; the
  server loads the related records of each record of the page);
* v10: ``/bulk`` calls after each page, holding one
  ``GET /<Module>/<id>/link/<link>?max_num=1&order_by=date_entered:ASC,id:ASC`` per record and
  link, at most ``max_batch_size`` per call.

The server never filters on these fields: the run evaluates such conditions itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmbridge.connectors.sugarcrm.discovery import ModuleMeta

#: related records are ordered by these (those the related module has); the first one counts
ORDER = ("date_entered", "id")


def wanted(meta: ModuleMeta, fields: Sequence[str]) -> dict[str, list[str]]:
    """The related fields among ``fields``, by link: ``{"contacts": ["email1", ...]}``."""
    links: dict[str, list[str]] = {}
    for name in fields:
        ref = meta.related.get(name)
        if ref is not None:
            links.setdefault(ref.link, []).append(ref.field)
    return links


def own_fields(meta: ModuleMeta, fields: Sequence[str]) -> list[str]:
    """``fields`` without the related ones."""
    return [name for name in fields if name not in meta.related]


def order_fields(meta: ModuleMeta, link: str) -> list[str]:
    """The fields of ``link``'s module that order its records (see :data:`ORDER`)."""
    return [name for name in ORDER if f"{link}.{name}" in meta.related]


def first(records: Sequence[Mapping[str, Any]], order: Sequence[str]) -> Mapping[str, Any] | None:
    """The first of ``records`` by ``order`` (wire values: v4_1 datetimes sort as text)."""
    if not records:
        return None
    return min(records, key=lambda r: tuple(str(r.get(n) or "") for n in order))


def fill(
    record: dict[str, Any], link: str, names: Sequence[str], related: Mapping[str, Any] | None
) -> None:
    """Put the values of ``related`` (or nulls) into ``record`` as ``<link>.<name>``."""
    for name in names:
        record[f"{link}.{name}"] = None if related is None else related.get(name)
