from bdmm_cli.cli import main

main()
