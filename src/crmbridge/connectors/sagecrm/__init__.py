"""Sage CRM connector (SOAP web services through zeep, sagecrm2 REST through httpx).

See docs/connectors/sagecrm.md. The parts:

* :mod:`.settings` connection settings; :mod:`.robust` retries, unknown outcomes, messages;
* :mod:`.sessions` one web service session per server and user; :mod:`.soap`, :mod:`.rest`
  the two API clients;
* :mod:`.fields` metadata -> schema (prefixes, flattened children); :mod:`.values` wire values
  <-> Arrow;
* :mod:`.query` filter pushdown; :mod:`.reader` reads; :mod:`.changes` API-level writes;
  :mod:`.writing` the plan's operations carried out (match keys, repeated attempts, defaults);
* :mod:`.connector` the connector class.
"""

from crmbridge.connectors.sagecrm.changes import Create, Delete, OpResult, Update
from crmbridge.connectors.sagecrm.connector import SageCrmConnector
from crmbridge.connectors.sagecrm.robust import OutcomeUnknownError
from crmbridge.connectors.sagecrm.settings import SageCrmSettings

__all__ = [
    "Create",
    "Delete",
    "OpResult",
    "OutcomeUnknownError",
    "SageCrmConnector",
    "SageCrmSettings",
    "Update",
]
