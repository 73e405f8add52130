"""Build the C extensions; everything else is declared in pyproject.toml.

masking: keyed hashing, fingerprints, fake assembly and the text scan the detectors narrow
their patterns with; expectations: the gate's Bloom filter kernels; cleanroom: COPY rows read
from libpq during extraction.
"""

from setuptools import Extension, setup

SOURCES = {
    "_masking_sha256": "masking/_sha256.c",
    "_masking_fingerprint": "masking/_fingerprint.c",
    "_masking_assemble": "masking/_assemble.c",
    "_masking_textscan": "masking/_textscan.c",
    "_gate_bloom": "expectations/_bloom.c",
    "_cleanroom_copy": "plugins/cleanroom/_copyrows.c",
}

setup(
    ext_modules=[
        Extension(name, sources=[source], extra_compile_args=["-O3", "-std=c11"])
        for name, source in SOURCES.items()
    ],
)
