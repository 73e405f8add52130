"""Build the one C extension, masking._sha256; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("_masking_sha256", sources=["masking/_sha256.c"], extra_compile_args=["-O3", "-std=c11"]),
    ],
)
