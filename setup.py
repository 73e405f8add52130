"""Build the C extensions (keyed hashing, fingerprints and fake assembly for masking, Bloom filter kernels
for the gate, COPY rows read from libpq for extraction); everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("_masking_sha256", sources=["masking/_sha256.c"], extra_compile_args=["-O3", "-std=c11"]),
        Extension("_masking_fingerprint", sources=["masking/_fingerprint.c"], extra_compile_args=["-O3", "-std=c11"]),
        Extension("_masking_assemble", sources=["masking/_assemble.c"],
                  extra_compile_args=["-O3", "-std=c11"]),
        Extension("_gate_bloom", sources=["expectations/_bloom.c"], extra_compile_args=["-O3", "-std=c11"]),
        Extension("_cleanroom_copy", sources=["plugins/cleanroom/_copyrows.c"],
                  extra_compile_args=["-O3", "-std=c11"]),
    ],
)
