"""``python -m crmbridge.sandbox.sugarcrm``: serve a sandbox until Ctrl-C."""

from crmbridge.sandbox.sugarcrm.cli import main

main()
