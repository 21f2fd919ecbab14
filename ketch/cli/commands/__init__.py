"""One module per `ketch` subcommand, each with `run(name, argv, ctx) -> int`."""
