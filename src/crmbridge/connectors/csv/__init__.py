"""CSV files as a source and an append-only target (see docs/connectors/csv.md)."""

from crmbridge.connectors.csv.connector import CsvConnector
from crmbridge.connectors.csv.dialect import CsvSettings

__all__ = ["CsvConnector", "CsvSettings"]
