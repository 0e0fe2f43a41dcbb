"""Excel .xlsx workbooks as a source and an append-only target (see docs/connectors/xlsx.md)."""

from crmbridge.connectors.xlsx.connector import XlsxConnector, XlsxSettings

__all__ = ["XlsxConnector", "XlsxSettings"]
