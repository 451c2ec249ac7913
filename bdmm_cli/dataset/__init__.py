"""Data sets on disk: the authors' layout (frames + kptsmpls JSON, test_list.csv)."""
