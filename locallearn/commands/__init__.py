"""Subcommands of the ``locallearn`` CLI; each module offers ``add_parser(subparsers)`` and ``run(args)``."""
