"""The ``irn`` command line: :mod:`.main` builds the parser and turns errors into one line;
one module per command (``HELP``, ``add_arguments(parser)``, ``run(args)``); :mod:`.common`
holds the argument types the commands share."""
