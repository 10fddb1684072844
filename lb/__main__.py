"""`python -m lb` is `exha-lb`."""

from lb.cli import main

main()
