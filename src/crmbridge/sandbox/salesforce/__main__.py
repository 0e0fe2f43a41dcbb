"""``python -m crmbridge.sandbox.salesforce``: serve a sandbox until Ctrl-C."""

from crmbridge.sandbox.salesforce.cli import main

main()
