"""crmbridge: move and synchronise customer data between CRMs, spreadsheets and databases."""

__version__ = "0.1.0"
