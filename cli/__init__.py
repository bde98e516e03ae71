"""The ``guardian`` command line: thin over :mod:`guardian.app`."""
