"""`python -m crmbridge` runs the crmbridge command."""

from crmbridge.cli.app import main

main()
