"""`python -m console.cli`: the same as the `credly-console` command."""

from console.cli import main

main()
