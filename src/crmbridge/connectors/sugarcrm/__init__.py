"""SugarCRM / SuiteCRM connector (legacy v4_1 REST and REST v10/v11).

See docs/connectors/sugarcrm.md. The parts:

* :mod:`.settings` connection settings; :mod:`.transport` HTTP with retries;
* :mod:`.v4_1`, :mod:`.v10` the two API clients behind :class:`.api.Api`; :mod:`.sessions`
  several v4_1 sessions for parallel calls;
* :mod:`.discovery` fields -> schema; :mod:`.catalog` the server's modules, found once and
  remembered in the connection's cache (:mod:`.cache`); :mod:`.values` wire values <-> Arrow,
  and the checks of values before writing;
* :mod:`.query` filter pushdown; :mod:`.reader`, :mod:`.lookup`, :mod:`.writer`;
* :mod:`.connector` the connector class.
"""

from crmbridge.connectors.sugarcrm.connector import SugarCrmConnector
from crmbridge.connectors.sugarcrm.settings import SugarCrmSettings

__all__ = ["SugarCrmConnector", "SugarCrmSettings"]
