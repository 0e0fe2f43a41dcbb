"""``python -m crmbridge.sandbox.quickbooks``: serve a sandbox until Ctrl-C."""

from crmbridge.sandbox.quickbooks.cli import main

main()
