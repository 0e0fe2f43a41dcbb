"""``python -m crmbridge.sandbox.sagecrm``: serve a sandbox until Ctrl-C."""

from crmbridge.sandbox.sagecrm.cli import main

main()
