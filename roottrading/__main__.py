"""`python -m roottrading` is the same as the `roottrading` command."""

from roottrading.cli import main

main()
