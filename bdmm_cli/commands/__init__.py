"""One module per CLI command; `bdmm_cli.cli` composes them into one Typer app."""
