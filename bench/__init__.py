"""Ketch benchmarks: each module here with a `main(argv) -> int` is one benchmark.

Run them all with `python -m bench`, or one with `python -m bench api [flags]`.
docs/benchmarks.md says what each measures and lists figures measured on the
project's machines.
"""
