"""Discovery remembered per connection: a run whose modules an earlier run described makes no
discovery call; what is remembered is forgotten when it proves out of date."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sugarcrm_helpers import read_all, settings

from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.connectors.sugarcrm.cache import FILE_NAME
from crmbridge.errors import ConfigError, RemoteError
from crmbridge.sandbox.sugarcrm import SugarSandbox

DISCOVERY = {
    "v4_1": ("v4_1:get_available_modules", "v4_1:get_module_fields", "v4_1:get_entries_count"),
    "v10": ("v10:GET /metadata", "v10:POST /Contacts/filter/count"),
}


@pytest.fixture
def box() -> Iterator[SugarSandbox]:
    sandbox = SugarSandbox(accounts=2)
    yield sandbox
    sandbox.close()


def opened(
    box: SugarSandbox, cache: Path | None, api: str, **overrides: object
) -> SugarCrmConnector:
    """A connector as a run makes it: a new instance, the connection's cache folder."""
    crm = SugarCrmConnector(
        "crm",
        settings(api=api, **overrides),
        transport=httpx.WSGITransport(app=box.wsgi_app),
    )
    crm.cache_dir = cache
    crm.open()
    return crm


def discovery_calls(box: SugarSandbox, api: str) -> int:
    counts = box.faults.call_counts()
    return sum(n for name, n in counts.items() if name in DISCOVERY[api])


def a_run(box: SugarSandbox, cache: Path | None, api: str) -> None:
    crm = opened(box, cache, api)
    try:
        read_all(crm, "Contacts", fields=["id", "title"], filter=_title_is_ceo())
    finally:
        crm.close()


def _title_is_ceo() -> object:
    from crmbridge.core.expressions import parse

    return parse("title = 'CEO'", what="filter")


def test_a_second_run_makes_no_discovery_call(box: SugarSandbox, tmp_path: Path, api: str) -> None:
    a_run(box, tmp_path, api)
    assert discovery_calls(box, api) >= 3
    assert (tmp_path / FILE_NAME).exists()
    box.faults.reset()
    a_run(box, tmp_path, api)
    assert discovery_calls(box, api) == 0
    counts = box.faults.call_counts()
    records = {"v4_1": "v4_1:get_entry_list", "v10": "v10:POST /Contacts/filter"}[api]
    assert counts.pop(records) == 1
    assert sorted(counts) in (
        ["v4_1:login", "v4_1:logout"],
        ["v10:POST /oauth2/logout", "v10:POST /oauth2/token"],
    )


def test_without_a_cache_folder_every_run_discovers(box: SugarSandbox, api: str) -> None:
    a_run(box, None, api)
    first = discovery_calls(box, api)
    box.faults.reset()
    a_run(box, None, api)
    assert discovery_calls(box, api) == first


def test_another_server_user_or_api_does_not_use_what_was_remembered(
    box: SugarSandbox, tmp_path: Path
) -> None:
    a_run(box, tmp_path, "v4_1")
    box.faults.reset()
    a_run(box, tmp_path, "v10")
    assert discovery_calls(box, "v10") > 0
    saved = json.loads((tmp_path / FILE_NAME).read_text(encoding="utf-8"))
    assert saved["identity"]["api"] == "v10"
    assert "admin" not in json.dumps(saved["described"]), "no secret, nothing but metadata"


def test_a_field_added_since_is_found_after_the_unknown_name_is_reported(
    tmp_path: Path, api: str
) -> None:
    data, cache = tmp_path / "crm.sqlite", tmp_path / "cache"
    SugarSandbox(data, accounts=1).close()
    stock = SugarSandbox(data)
    try:
        first = opened(stock, cache, api)
        first.describe("Leads")
        first.close()  # remembers Leads without external_id_c
    finally:
        stock.close()
    studio = SugarSandbox(data, studio_fields=["Leads.external_id_c"])  # added with Studio
    try:
        crm = opened(studio, cache, api)
        with pytest.raises(ConfigError) as info:
            crm.describe("Leads").field("external_id_c")
        assert "crmbridge had remembered the fields of Leads from " in str(info.value)
        assert "and asks the server again next time" in str(info.value)
        crm.close()
        assert not (cache / FILE_NAME).exists()
        again = opened(studio, cache, api)
        assert again.describe("Leads").field("external_id_c").length == 255
        again.close()
    finally:
        studio.close()


def test_a_filter_the_server_refuses_forgets_what_was_remembered(
    box: SugarSandbox, tmp_path: Path
) -> None:
    a_run(box, tmp_path, "v4_1")
    crm = opened(box, tmp_path, "v4_1")
    box.faults.fail_next(6, status=500, body="Database failure. Please refer to suitecrm.log")
    with pytest.raises(RemoteError, match="Database failure"):
        read_all(crm, "Contacts", fields=["id"], filter=_title_is_ceo())
    assert not (tmp_path / FILE_NAME).exists()
    crm.close()
    assert not (tmp_path / FILE_NAME).exists(), "not written back at the end of the run"


def test_an_unreadable_cache_file_is_ignored(box: SugarSandbox, tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text("{not json", encoding="utf-8")
    a_run(box, tmp_path, "v4_1")
    assert json.loads((tmp_path / FILE_NAME).read_text(encoding="utf-8"))["format"] == 1
