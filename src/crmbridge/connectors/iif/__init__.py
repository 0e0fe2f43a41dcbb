"""QuickBooks Desktop IIF files as a target (and a source) (see docs/connectors/iif.md)."""

from crmbridge.connectors.iif.connector import IifConnector, IifSettings

__all__ = ["IifConnector", "IifSettings"]
