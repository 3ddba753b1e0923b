"""`python -m helios_cli ...` is the same as the `helios` console script."""

from helios_cli.app import main

if __name__ == "__main__":
    main()
