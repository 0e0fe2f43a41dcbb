"""JSON Lines files as a source and an append-only target (see docs/connectors/jsonl.md)."""

from crmbridge.connectors.jsonl.connector import JsonlConnector, JsonlSettings

__all__ = ["JsonlConnector", "JsonlSettings"]
