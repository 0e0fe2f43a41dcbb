"""SQL databases through SQLAlchemy 2: SQLite, PostgreSQL, MariaDB/MySQL, SQL Server.

See docs/connectors/sql.md. Registered as the ``sql`` connector.
"""

from crmbridge.connectors.sql.connector import SqlConnector
from crmbridge.connectors.sql.settings import SqlSettings

__all__ = ["SqlConnector", "SqlSettings"]
