"""Tests of the shared runtime in libs/common (taskforge_common)."""
