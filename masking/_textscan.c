/*
 * What characters a text holds, per value of an Arrow string column, in one pass.
 *
 * masking.detectors tests every candidate row against each detector's RE2 pattern, one Arrow
 * pass per kind; each pass costs about 150 ns a row whatever the pattern, so fifteen kinds cost
 * over 2 µs a row. Most patterns cannot match without some character (an email needs '@', a
 * card 13 digits, a JWT "eyJ"). This pass records those characters for every row, so the
 * detectors run a kind's pattern only over rows that hold what the kind needs.
 *
 * The features are packed in one uint32 per row (masking.detectors names the bits):
 * bits 0-7 count ASCII digits (saturated at 255); then '@', ':', '=', a byte >= 0x80, "eyJ",
 * "-----BEGIN", "bearer" in any ASCII case, an upper-case ASCII letter, '_', '-', and the heads
 * of AWS key ids, IBANs and two vendor tokens.
 * The GIL is released during the pass.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum {
    F_AT = 1u << 8,
    F_COLON = 1u << 9,
    F_EQUALS = 1u << 10,
    F_NON_ASCII = 1u << 11,
    F_JWT = 1u << 12,
    F_PEM = 1u << 13,
    F_BEARER = 1u << 14,
    F_UPPER = 1u << 15,
    F_UNDERSCORE = 1u << 16,
    F_DASH = 1u << 17,
    F_AWS_HEAD = 1u << 18,  /* AKIA, ASIA, ABIA, ACCA or A3T: how AWS key ids start */
    F_IBAN_HEAD = 1u << 19, /* two upper-case letters, then two digits */
    F_VENDOR_HEAD = 1u << 20, /* AIza or SG.: token prefixes with neither '_' nor '-' */
};

static int starts_with(const uint8_t *at, size_t left, const char *literal, size_t size) {
    return left >= size && memcmp(at, literal, size) == 0;
}

static int is_upper(uint8_t c) { return c >= 'A' && c <= 'Z'; }
static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* Heads of tokens that start with an upper-case letter at text[0]. */
static uint32_t upper_heads(const uint8_t *text, size_t left) {
    uint32_t flags = 0;
    if (left >= 4 && is_upper(text[1]) && is_digit(text[2]) && is_digit(text[3])) flags |= F_IBAN_HEAD;
    if (text[0] == 'A' && (starts_with(text, left, "AKIA", 4) || starts_with(text, left, "ASIA", 4) ||
                           starts_with(text, left, "ABIA", 4) || starts_with(text, left, "ACCA", 4) ||
                           starts_with(text, left, "A3T", 3)))
        flags |= F_AWS_HEAD;
    if (starts_with(text, left, "AIza", 4) || starts_with(text, left, "SG.", 3)) flags |= F_VENDOR_HEAD;
    return flags;
}

static int starts_with_ci(const uint8_t *at, size_t left, const char *lower, size_t size) {
    if (left < size) return 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t c = at[i];
        if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        if (c != (uint8_t)lower[i]) return 0;
    }
    return 1;
}

/* What each byte alone tells (CHAR_FLAGS), and whether it may start a sequence worth a look
 * (STARTS): filled once when the module loads, so the scan is a table lookup per byte. */
static uint32_t CHAR_FLAGS[256];
static uint8_t STARTS[256];

static void fill_tables(void) {
    for (int c = 0x80; c < 256; c++) CHAR_FLAGS[c] = F_NON_ASCII;
    for (int c = 'A'; c <= 'Z'; c++) CHAR_FLAGS[c] = F_UPPER, STARTS[c] = 1;
    CHAR_FLAGS['@'] = F_AT;
    CHAR_FLAGS[':'] = F_COLON;
    CHAR_FLAGS['='] = F_EQUALS;
    CHAR_FLAGS['_'] = F_UNDERSCORE;
    CHAR_FLAGS['-'] = F_DASH;
    STARTS['-'] = STARTS['e'] = STARTS['b'] = 1;
}

/* Sequences starting at text[0], a byte STARTS marks. */
static uint32_t sequence_at(const uint8_t *text, size_t left) {
    uint8_t c = text[0];
    if (c == '-') return starts_with(text, left, "-----BEGIN", 10) ? F_PEM : 0;
    if (c == 'e') return starts_with(text, left, "eyJ", 3) ? F_JWT : 0;
    uint32_t flags = (c == 'b' || c == 'B') && starts_with_ci(text, left, "bearer", 6) ? F_BEARER : 0;
    return c == 'b' ? flags : flags | upper_heads(text, left);
}

static uint32_t features_of(const uint8_t *text, size_t len) {
    uint32_t flags = 0, digits = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = text[i];
        flags |= CHAR_FLAGS[c];
        digits += (uint8_t)(c - '0') < 10;
        if (STARTS[c]) flags |= sequence_at(text + i, len - i);
    }
    return flags | (digits > 255 ? 255 : digits);
}

PyDoc_STRVAR(text_features_doc,
"text_features(offsets, data, out, wide)\n--\n\n"
"Write the packed features of every value into out (one uint32 per value).\n\n"
"offsets holds len(values)+1 offsets into data (int64 when wide, else int32), as in an Arrow\n"
"string array. Null slots must span no bytes (or be ignored by the caller).");

static PyObject *text_features(PyObject *self, PyObject *args) {
    Py_buffer offsets, data, out;
    int wide;
    if (!PyArg_ParseTuple(args, "y*y*w*p", &offsets, &data, &out, &wide)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t width = wide ? 8 : 4;
    Py_ssize_t n = offsets.len / width - 1;
    if (n < 0 || offsets.len % width) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold at least one offset");
    } else if (out.len < n * 4) {
        PyErr_SetString(PyExc_ValueError, "out is too small for the values");
    } else {
        const uint8_t *base = data.buf;
        uint32_t *features = out.buf;
        int bad = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t lo = wide ? ((const int64_t *)offsets.buf)[i] : ((const int32_t *)offsets.buf)[i];
            int64_t hi = wide ? ((const int64_t *)offsets.buf)[i + 1] : ((const int32_t *)offsets.buf)[i + 1];
            if (lo < 0 || hi < lo || hi > data.len) { bad = 1; break; }
            features[i] = features_of(base + lo, (size_t)(hi - lo));
        }
        Py_END_ALLOW_THREADS
        if (bad) PyErr_SetString(PyExc_ValueError, "an offset points outside the data buffer");
        else result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"text_features", text_features, METH_VARARGS, text_features_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_masking_textscan", "Per-value character features of Arrow string columns.", -1, methods,
};

PyMODINIT_FUNC PyInit__masking_textscan(void) {
    fill_tables();
    return PyModule_Create(&module);
}
