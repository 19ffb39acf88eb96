"""One module per ``cnnzoo`` subcommand: ``HELP`` (one line), ``add_arguments(parser)`` (every
option with its help text) and ``run(args) -> exit status``. ``cnnzoo.cli`` lists them."""
