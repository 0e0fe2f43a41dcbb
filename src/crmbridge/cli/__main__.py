"""`python -m crmbridge.cli` runs the crmbridge command."""

from crmbridge.cli.app import main

main()
