/*
 * Bulk SHA-256 of (secret prefix || value) over the buffers of an Arrow binary array.
 *
 * masking.keys defines every keyed digest as SHA-256(prefix || value), where prefix is one
 * 64-byte block. This module computes exactly that function for a whole column in one call:
 * the prefix block is compressed once, then every value continues from that chaining state,
 * so a value of up to 55 bytes costs one compression. The output is the leading bytes of each
 * digest, which Python views as big-endian integers or turns into hex.
 *
 * On x86-64 processors with the SHA extensions the compression uses them; elsewhere it runs
 * the portable code below. Both are checked against hashlib by tests/test_keys.py.
 * The GIL is released while hashing, so extraction threads hash in parallel.
 *
 * iso_datetimes writes the text that masking.keys hashes for a timestamp (Python's str() or
 * isoformat() of the datetime), which Arrow's cast to string could only build in four passes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86_SHA 1
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t IV[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

typedef void (*compress_fn)(uint32_t state[8], const uint8_t block[64]);

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t state[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++) {
        w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
               (uint32_t)block[4 * t + 2] << 8 | (uint32_t)block[4 * t + 3];
    }
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

#ifdef HAVE_X86_SHA
/* The SHA-NI round instructions work on the state as (A,B,E,F) and (C,D,G,H) lanes. */
__attribute__((target("sha,sse4.1,ssse3")))
static void compress_sha_ni(uint32_t state[8], const uint8_t block[64]) {
    const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1); /* CDAB */
    __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B); /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);    /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);         /* CDGH */
    const __m128i abef = state0, cdgh = state1;

    __m128i w[4];
    for (int g = 0; g < 16; g++) {
        __m128i m;
        if (g < 4) {
            m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * g)), byteswap);
        } else {
            /* w[g-4], w[g-3], w[g-2], w[g-1] sit in slots g, g+1, g+2, g+3 (mod 4). */
            m = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
            m = _mm_add_epi32(m, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
            m = _mm_sha256msg2_epu32(m, w[(g + 3) & 3]);
        }
        w[g & 3] = m;
        __m128i k = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&K[4 * g]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, k);
        state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(k, 0x0E));
    }
    state0 = _mm_add_epi32(state0, abef);
    state1 = _mm_add_epi32(state1, cdgh);

    tmp = _mm_shuffle_epi32(state0, 0x1B);          /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);       /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);    /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);       /* HGFE */
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}

static int cpu_has_sha_ni(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 29) & 1;
}
#endif

static compress_fn compress = compress_portable;

/* Digest of (prefix || value), continuing from the chaining state after the prefix block. */
static void hash_value(const uint32_t prefixed[8], const uint8_t *value, size_t len, uint8_t *out, size_t out_len) {
    uint32_t state[8];
    uint8_t last[128];
    memcpy(state, prefixed, sizeof(state));
    size_t full = len / 64;
    for (size_t i = 0; i < full; i++) compress(state, value + 64 * i);
    size_t rest = len - 64 * full;
    size_t tail = rest < 56 ? 64 : 128;
    memset(last, 0, tail);
    memcpy(last, value + 64 * full, rest);
    last[rest] = 0x80;
    uint64_t bits = ((uint64_t)len + 64) * 8;
    for (int i = 0; i < 8; i++) last[tail - 1 - i] = (uint8_t)(bits >> (8 * i));
    compress(state, last);
    if (tail == 128) compress(state, last + 64);
    for (size_t i = 0; i < out_len; i++) out[i] = (uint8_t)(state[i / 4] >> (24 - 8 * (i % 4)));
}

PyDoc_STRVAR(prefixed_digests_doc,
"prefixed_digests(prefix, offsets, data, out, digest_bytes, wide)\n--\n\n"
"Write the first digest_bytes bytes of SHA-256(prefix || value) for every value into out.\n\n"
"prefix is 64 bytes; offsets holds len(values)+1 offsets into data (int64 when wide, else\n"
"int32), as in an Arrow binary array; out is writable, len(values) * digest_bytes bytes.");

static PyObject *prefixed_digests(PyObject *self, PyObject *args) {
    Py_buffer prefix, offsets, data, out;
    Py_ssize_t digest_bytes;
    int wide;
    if (!PyArg_ParseTuple(args, "y*y*y*w*np", &prefix, &offsets, &data, &out, &digest_bytes, &wide)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t width = wide ? 8 : 4;
    Py_ssize_t n = offsets.len / width - 1;
    if (prefix.len != 64) {
        PyErr_SetString(PyExc_ValueError, "the prefix must be 64 bytes");
    } else if (digest_bytes < 1 || digest_bytes > 32) {
        PyErr_SetString(PyExc_ValueError, "digest_bytes must be between 1 and 32");
    } else if (n < 0 || offsets.len % width) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold at least one offset");
    } else if (out.len < n * digest_bytes) {
        PyErr_SetString(PyExc_ValueError, "out is too small for the digests");
    } else {
        const uint8_t *base = data.buf;
        int bad = 0;
        uint32_t prefixed[8];
        memcpy(prefixed, IV, sizeof(prefixed));
        compress(prefixed, prefix.buf);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t lo = wide ? ((const int64_t *)offsets.buf)[i] : ((const int32_t *)offsets.buf)[i];
            int64_t hi = wide ? ((const int64_t *)offsets.buf)[i + 1] : ((const int32_t *)offsets.buf)[i + 1];
            if (lo < 0 || hi < lo || hi > data.len) { bad = 1; break; }
            hash_value(prefixed, base + lo, (size_t)(hi - lo), (uint8_t *)out.buf + i * digest_bytes, (size_t)digest_bytes);
        }
        Py_END_ALLOW_THREADS
        if (bad) PyErr_SetString(PyExc_ValueError, "an offset points outside the data buffer");
        else result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *year, unsigned *month, unsigned *day) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int64_t)yoe + era * 400 + (*month <= 2);
}

static char *digits(char *at, unsigned value, int width) {
    for (int i = width - 1; i >= 0; i--, value /= 10) at[i] = (char)('0' + value % 10);
    return at + width;
}

#define MICROS_PER_DAY INT64_C(86400000000)

PyDoc_STRVAR(iso_datetimes_doc,
"iso_datetimes(micros, sep, utc, offsets, data) -> int\n--\n\n"
"Write 'YYYY-MM-DD<sep>HH:MM:SS[.ffffff][+00:00]' for every int64 count of microseconds since\n"
"the epoch: the fraction only when it is not zero (as Python prints a datetime), the offset\n"
"when utc. offsets (int32, len(micros)+1) and data (at least 32 bytes a value) are written as\n"
"an Arrow string array's buffers. Returns the bytes of data used, or -1 when a value lies\n"
"outside the years 1 to 9999, which Python's datetime cannot hold (nothing is promised then).");

static PyObject *iso_datetimes(PyObject *self, PyObject *args) {
    Py_buffer micros, offsets, data;
    const char *sep;
    Py_ssize_t sep_len;
    int utc;
    if (!PyArg_ParseTuple(args, "y*s#pw*w*", &micros, &sep, &sep_len, &utc, &offsets, &data)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = micros.len / 8;
    if (micros.len % 8 || sep_len != 1) {
        PyErr_SetString(PyExc_ValueError, "micros must be int64 values and sep one character");
    } else if (offsets.len < (n + 1) * 4 || data.len < n * 32) {
        PyErr_SetString(PyExc_ValueError, "offsets or data is too small");
    } else if (n > INT32_MAX / 32) {
        PyErr_SetString(PyExc_ValueError, "too many values for int32 offsets; pass fewer at a time");
    } else {
        const int64_t *ticks = micros.buf;
        int32_t *off = offsets.buf;
        char *base = data.buf, *at = base;
        int bad = 0;
        Py_BEGIN_ALLOW_THREADS
        off[0] = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t t = ticks[i];
            int64_t days = t / MICROS_PER_DAY, rest = t % MICROS_PER_DAY;
            if (rest < 0) { rest += MICROS_PER_DAY; days -= 1; }
            int64_t year;
            unsigned month, day;
            civil_from_days(days, &year, &month, &day);
            if (year < 1 || year > 9999) { bad = 1; break; }
            unsigned seconds = (unsigned)(rest / 1000000), fraction = (unsigned)(rest % 1000000);
            at = digits(at, (unsigned)year, 4); *at++ = '-';
            at = digits(at, month, 2); *at++ = '-';
            at = digits(at, day, 2); *at++ = sep[0];
            at = digits(at, seconds / 3600, 2); *at++ = ':';
            at = digits(at, seconds / 60 % 60, 2); *at++ = ':';
            at = digits(at, seconds % 60, 2);
            if (fraction) { *at++ = '.'; at = digits(at, fraction, 6); }
            if (utc) { memcpy(at, "+00:00", 6); at += 6; }
            off[i + 1] = (int32_t)(at - base);
        }
        Py_END_ALLOW_THREADS
        result = PyLong_FromSsize_t(bad ? -1 : (Py_ssize_t)(at - base));
    }
    PyBuffer_Release(&micros);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *implementation(PyObject *self, PyObject *unused) {
    return PyUnicode_FromString(compress == compress_portable ? "portable" : "sha-ni");
}

static PyMethodDef methods[] = {
    {"prefixed_digests", prefixed_digests, METH_VARARGS, prefixed_digests_doc},
    {"iso_datetimes", iso_datetimes, METH_VARARGS, iso_datetimes_doc},
    {"implementation", implementation, METH_NOARGS, "Which compression function runs: 'sha-ni' or 'portable'."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_masking_sha256", "Bulk prefixed SHA-256 for masking.keys.", -1, methods};

PyMODINIT_FUNC PyInit__masking_sha256(void) {
#ifdef HAVE_X86_SHA
    if (cpu_has_sha_ni() && getenv("CLEANROOM_SHA256_PORTABLE") == NULL) compress = compress_sha_ni;
#endif
    return PyModule_Create(&module);
}
