"""Microsoft Access files (.mdb, .accdb) as a read-only source (see docs/connectors/access.md).

Register with: ``access = "crmbridge.connectors.access:AccessConnector"``.
"""

from crmbridge.connectors.access.connector import AccessConnector, AccessSettings

__all__ = ["AccessConnector", "AccessSettings"]
