"""`python -m tollway` is the `tollway` command."""

from tollway.cli import main

main()
