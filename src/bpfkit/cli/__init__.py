"""The ``bpfkit`` command line: a thin shell over the library."""
