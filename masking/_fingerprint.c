/*
 * Keyed 64-bit fingerprints of whole Arrow columns: SipHash-2-4, optionally of normalised text.
 *
 * Fingerprints are how the validation gate recognises an original value that survived
 * masking: extraction records one per original, the gate computes one per published value,
 * and equal fingerprints mean equal (normalised) values. They never leave a run's private
 * work area, so their function can be chosen for speed: SipHash-2-4 is a keyed PRF built for
 * short inputs with a 64-bit output (Aumasson and Bernstein, 2012), several times cheaper
 * than a SHA-256 compression per value.
 *
 * With normalise set, each value is first trimmed of the ASCII characters Python's
 * str.strip() removes and lower-cased, as masking.keys.normalise_for_fingerprint does for
 * ASCII text, on the fly, without copying the column. A value holding a non-ASCII byte is not
 * hashed: it is flagged for Python, whose casefold() and Unicode whitespace it needs.
 * Null slots (per the validity bitmap) get 0. The GIL is released while hashing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                  \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                     \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                     \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                  \
    } while (0)

/* Bytes Python's str.strip() removes from ASCII text: space, \t \n \v \f \r and \x1c to \x1f. */
static int is_strip_byte(uint8_t c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
}

static uint64_t load_le64(const uint8_t *p, int lower) {
    uint64_t word = 0;
    for (int i = 0; i < 8; i++) {
        uint8_t c = p[i];
        if (lower && c >= 'A' && c <= 'Z') c += 'a' - 'A';
        word |= (uint64_t)c << (8 * i);
    }
    return word;
}

/* SipHash-2-4 of value[0:len] under (k0, k1), lower-casing ASCII letters first when lower is set. */
static uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *value, size_t len, int lower) {
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(value + i, lower);
        v3 ^= m;
        SIPROUND; SIPROUND;
        v0 ^= m;
    }
    uint8_t tail[8] = {0};
    memcpy(tail, value + whole, len - whole);
    uint64_t m = load_le64(tail, lower) | (uint64_t)(len & 0xff) << 56;
    v3 ^= m;
    SIPROUND; SIPROUND;
    v0 ^= m;
    v2 ^= 0xff;
    SIPROUND; SIPROUND; SIPROUND; SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

PyDoc_STRVAR(fingerprints_doc,
"fingerprints(key, offsets, data, validity, bit_offset, out, python, wide, normalise)\n--\n\n"
"Write SipHash-2-4 under the 16-byte key of every value into out (uint64 per value).\n\n"
"offsets holds len(values)+1 offsets into data (int64 when wide, else int32), as in an Arrow\n"
"binary or string array; validity is the array's validity bitmap (or None) and bit_offset\n"
"the array's offset into it; null slots get 0. With normalise, values are trimmed of ASCII\n"
"whitespace and lower-cased first, and a value with a non-ASCII byte gets python[i] = 1 and\n"
"out[i] = 0 instead. Returns how many values were flagged.");

static PyObject *fingerprints(PyObject *self, PyObject *args) {
    Py_buffer key, offsets, data, out, python;
    PyObject *validity_obj;
    Py_ssize_t bit_offset;
    int wide, normalise;
    if (!PyArg_ParseTuple(args, "y*y*y*Onw*w*pp", &key, &offsets, &data, &validity_obj, &bit_offset, &out, &python,
                          &wide, &normalise))
        return NULL;
    Py_buffer validity = {0};
    int has_validity = validity_obj != Py_None;
    if (has_validity && PyObject_GetBuffer(validity_obj, &validity, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&key); PyBuffer_Release(&offsets); PyBuffer_Release(&data);
        PyBuffer_Release(&out); PyBuffer_Release(&python);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t width = wide ? 8 : 4;
    Py_ssize_t n = offsets.len / width - 1;
    if (key.len != 16) {
        PyErr_SetString(PyExc_ValueError, "the key must be 16 bytes");
    } else if (n < 0 || offsets.len % width) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold at least one offset");
    } else if (out.len < n * 8 || python.len < n) {
        PyErr_SetString(PyExc_ValueError, "out or python is too small for the values");
    } else if (bit_offset < 0 || (has_validity && validity.len * 8 < bit_offset + n)) {
        PyErr_SetString(PyExc_ValueError, "the validity bitmap is too small for the values");
    } else {
        const uint8_t *base = data.buf, *bits = has_validity ? validity.buf : NULL;
        uint64_t k0 = 0, k1 = 0;
        for (int i = 0; i < 8; i++) {
            k0 |= (uint64_t)((const uint8_t *)key.buf)[i] << (8 * i);
            k1 |= (uint64_t)((const uint8_t *)key.buf)[8 + i] << (8 * i);
        }
        uint64_t *digests = out.buf;
        uint8_t *flags = python.buf;
        Py_ssize_t flagged = 0;
        int bad = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t lo = wide ? ((const int64_t *)offsets.buf)[i] : ((const int32_t *)offsets.buf)[i];
            int64_t hi = wide ? ((const int64_t *)offsets.buf)[i + 1] : ((const int32_t *)offsets.buf)[i + 1];
            flags[i] = 0;
            digests[i] = 0;
            if (bits && !((bits[(bit_offset + i) >> 3] >> ((bit_offset + i) & 7)) & 1)) continue;
            if (lo < 0 || hi < lo || hi > data.len) { bad = 1; break; }
            const uint8_t *value = base + lo;
            size_t len = (size_t)(hi - lo);
            if (normalise) {
                int ascii = 1;
                for (size_t j = 0; j < len; j++) ascii &= value[j] < 0x80;
                if (!ascii) { flags[i] = 1; flagged++; continue; }
                while (len && is_strip_byte(value[0])) { value++; len--; }
                while (len && is_strip_byte(value[len - 1])) len--;
            }
            digests[i] = siphash24(k0, k1, value, len, normalise);
        }
        Py_END_ALLOW_THREADS
        if (bad) PyErr_SetString(PyExc_ValueError, "an offset points outside the data buffer");
        else result = PyLong_FromSsize_t(flagged);
    }
    if (has_validity) PyBuffer_Release(&validity);
    PyBuffer_Release(&key);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    PyBuffer_Release(&python);
    return result;
}

static PyMethodDef methods[] = {
    {"fingerprints", fingerprints, METH_VARARGS, fingerprints_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_masking_fingerprint", "Keyed SipHash-2-4 fingerprints of Arrow columns for masking.keys.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__masking_fingerprint(void) { return PyModule_Create(&module); }
