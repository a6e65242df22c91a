"""Benchmarks: each ``bench/<name>.py`` exposes ``main()``; run them with ``python -m bench [name ...]``."""
