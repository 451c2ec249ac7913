"""The BDMM networks: generator (with its DMM blocks), spatial and temporal discriminators."""
