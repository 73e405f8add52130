/* Bloom filter kernels for expectations.spill.BloomFilter.
 *
 * The gate asks millions of keyed fingerprints whether they may be originals. numpy needs a
 * temporary array per probe and a sort to OR bits that share a byte; here each value sets or
 * tests its probe bits in one pass, without the GIL. A probe position is
 * (value * mix) >> shift on uint64 with wrap-around, bit (pos & 7) of byte (pos >> 3): exactly
 * what BloomFilter._positions computes in numpy, so either can check the other.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static int parse(PyObject *args, Py_buffer *bits, Py_buffer *values, Py_buffer *mixes, unsigned *shift,
                 Py_buffer *out, int writable_bits) {
    int ok = writable_bits ? PyArg_ParseTuple(args, "w*y*y*I", bits, values, mixes, shift)
                           : PyArg_ParseTuple(args, "y*y*y*Iw*", bits, values, mixes, shift, out);
    if (!ok) return 0;
    const char *problem = NULL;
    if (values->len % 8 || mixes->len % 8 || mixes->len == 0) problem = "values and mixes must be uint64 arrays, mixes not empty";
    else if (*shift < 1 || *shift > 63) problem = "shift must be between 1 and 63";
    else if (((uint64_t)bits->len << 3) < (UINT64_C(1) << (64 - *shift))) problem = "bits is smaller than the shift addresses";
    else if (!writable_bits && out->len < values->len / 8) problem = "out must hold one byte per value";
    if (problem == NULL) return 1;
    PyErr_SetString(PyExc_ValueError, problem);
    PyBuffer_Release(bits);
    PyBuffer_Release(values);
    PyBuffer_Release(mixes);
    if (!writable_bits) PyBuffer_Release(out);
    return 0;
}

PyDoc_STRVAR(add_doc,
"add(bits, values, mixes, shift)\n--\n\n"
"Set bit (v * m) >> shift of the writable byte buffer bits for every uint64 value v and mix m.");

static PyObject *add(PyObject *self, PyObject *args) {
    Py_buffer bits, values, mixes;
    unsigned shift;
    if (!parse(args, &bits, &values, &mixes, &shift, NULL, 1)) return NULL;
    uint8_t *b = bits.buf;
    const uint64_t *v = values.buf, *m = mixes.buf;
    Py_ssize_t n = values.len / 8, k = mixes.len / 8;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t j = 0; j < k; j++) {
            uint64_t pos = (v[i] * m[j]) >> shift;
            b[pos >> 3] |= (uint8_t)(1u << (pos & 7));
        }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bits);
    PyBuffer_Release(&values);
    PyBuffer_Release(&mixes);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(test_doc,
"test(bits, values, mixes, shift, out)\n--\n\n"
"Write 1 into out[i] when every probe bit of values[i] is set in bits, else 0.");

static PyObject *test(PyObject *self, PyObject *args) {
    Py_buffer bits, values, mixes, out;
    unsigned shift;
    if (!parse(args, &bits, &values, &mixes, &shift, &out, 0)) return NULL;
    const uint8_t *b = bits.buf;
    const uint64_t *v = values.buf, *m = mixes.buf;
    uint8_t *o = out.buf;
    Py_ssize_t n = values.len / 8, k = mixes.len / 8;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t all = 1;
        for (Py_ssize_t j = 0; j < k && all; j++) {
            uint64_t pos = (v[i] * m[j]) >> shift;
            all = (b[pos >> 3] >> (pos & 7)) & 1;
        }
        o[i] = all;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bits);
    PyBuffer_Release(&values);
    PyBuffer_Release(&mixes);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, add_doc},
    {"test", test, METH_VARARGS, test_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gate_bloom", "Bloom filter kernels for expectations.spill.", -1, methods};

PyMODINIT_FUNC PyInit__gate_bloom(void) { return PyModule_Create(&module); }
