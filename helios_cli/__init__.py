"""The `helios` command line: parses, validates and reports; all behaviour lives in helios_core."""
