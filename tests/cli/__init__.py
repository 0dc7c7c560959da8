"""Tests of the `ojd` command line."""
