/*
 * Assemble an Arrow string array whose value per row is the concatenation of a few parts.
 *
 * masking.fakes spells every fake from small pools of text (first names, street names,
 * separators, domains, ...) picked per row by index, plus fixed literals. Arrow has no kernel
 * for "take from several pools and join": a take per part and a join cost about 0.4 µs per
 * value, and Python strings cost more. Here each part is a literal (bytes) or a pool, given
 * as an Arrow string array's int32 offsets and data buffer with an int64 index per row (or
 * no index: row i takes entry i, for parts already built per row). One pass sums each row's
 * length into the output offsets; the second copies the bytes into a data buffer of exactly
 * that size. Every index is checked against its pool, every pool's offsets against its data,
 * and the total against int32 offsets, before anything is copied. The GIL is released in
 * both passes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    Py_buffer literal, offsets, data, index; /* literal alone, or offsets + data (+ index) */
    int is_literal, has_index;
    Py_ssize_t entries; /* values in the pool */
} part_t;

static void part_release(part_t *part) {
    if (part->is_literal) {
        PyBuffer_Release(&part->literal);
        return;
    }
    PyBuffer_Release(&part->offsets);
    PyBuffer_Release(&part->data);
    if (part->has_index) PyBuffer_Release(&part->index);
}

/* Whether the pool's offsets start at or after 0, never decrease and stay inside its data. */
static int pool_is_well_formed(const part_t *part) {
    const int32_t *off = part->offsets.buf;
    if (off[0] < 0) return 0;
    for (Py_ssize_t i = 0; i < part->entries; i++)
        if (off[i + 1] < off[i]) return 0;
    return off[part->entries] <= part->data.len;
}

/* Hold the buffers of one part (bytes, or a tuple (offsets, data, index or None)); 0 on success. */
static int part_acquire(PyObject *item, Py_ssize_t rows, part_t *part) {
    memset(part, 0, sizeof *part);
    if (PyBytes_Check(item)) {
        part->is_literal = 1;
        return PyObject_GetBuffer(item, &part->literal, PyBUF_SIMPLE);
    }
    PyObject *index_obj;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
        PyErr_SetString(PyExc_TypeError, "a part must be bytes or a tuple (offsets, data, index or None)");
        return -1;
    }
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(item, 0), &part->offsets, PyBUF_SIMPLE) < 0) return -1;
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(item, 1), &part->data, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&part->offsets);
        return -1;
    }
    index_obj = PyTuple_GET_ITEM(item, 2);
    part->has_index = index_obj != Py_None;
    if (part->has_index && PyObject_GetBuffer(index_obj, &part->index, PyBUF_SIMPLE) < 0) {
        part->has_index = 0;
        part_release(part);
        return -1;
    }
    part->entries = part->offsets.len / 4 - 1;
    const char *problem = NULL;
    if (part->offsets.len % 4 || part->entries < 0)
        problem = "pool offsets must be int32 and hold at least one offset";
    else if (!pool_is_well_formed(part))
        problem = "pool offsets must not decrease and must stay inside the pool data";
    else if (part->has_index && part->index.len != rows * 8)
        problem = "an index must hold one int64 per row";
    else if (!part->has_index && part->entries != rows)
        problem = "a part without an index must hold one value per row";
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        part_release(part);
        return -1;
    }
    return 0;
}

/* The pool entry row takes from a pool part, or -1 when its index lies outside the pool. */
static int64_t entry_of(const part_t *part, Py_ssize_t row) {
    if (!part->has_index) return row;
    int64_t entry = ((const int64_t *)part->index.buf)[row];
    return entry >= 0 && entry < part->entries ? entry : -1;
}

/* First pass: write the int32 offsets of every row; return the total bytes, -1 for an index outside
 * its pool, -2 when the total does not fit int32 offsets. */
static int64_t sum_lengths(const part_t *parts, Py_ssize_t count, Py_ssize_t rows, int32_t *out) {
    int64_t total = 0;
    out[0] = 0;
    for (Py_ssize_t row = 0; row < rows; row++) {
        for (Py_ssize_t p = 0; p < count; p++) {
            const part_t *part = &parts[p];
            if (part->is_literal) {
                total += part->literal.len;
                continue;
            }
            int64_t entry = entry_of(part, row);
            if (entry < 0) return -1;
            const int32_t *off = part->offsets.buf;
            total += off[entry + 1] - off[entry];
        }
        if (total > INT32_MAX) return -2;
        out[row + 1] = (int32_t)total;
    }
    return total;
}

/* Second pass: copy every row's parts into data (size bytes); 0, or -1 if the parts changed since
 * the first pass and would overrun it. */
static int copy_parts(const part_t *parts, Py_ssize_t count, Py_ssize_t rows, char *data, int64_t size) {
    char *at = data, *end = data + size;
    for (Py_ssize_t row = 0; row < rows; row++) {
        for (Py_ssize_t p = 0; p < count; p++) {
            const part_t *part = &parts[p];
            const char *from;
            Py_ssize_t len;
            if (part->is_literal) {
                from = part->literal.buf;
                len = part->literal.len;
            } else {
                int64_t entry = entry_of(part, row);
                if (entry < 0) return -1;
                const int32_t *off = part->offsets.buf;
                from = (const char *)part->data.buf + off[entry];
                len = off[entry + 1] - off[entry];
            }
            if (len > end - at) return -1;
            memcpy(at, from, (size_t)len);
            at += len;
        }
    }
    return at == end ? 0 : -1;
}

/* Sum, allocate and copy with every part's buffers held; the data as bytes, or NULL with an error. */
static PyObject *assemble_parts(const part_t *parts, Py_ssize_t count, Py_ssize_t rows, int32_t *offsets) {
    int64_t total;
    Py_BEGIN_ALLOW_THREADS
    total = sum_lengths(parts, count, rows, offsets);
    Py_END_ALLOW_THREADS
    if (total == -1) {
        PyErr_SetString(PyExc_ValueError, "an index lies outside its pool");
        return NULL;
    }
    if (total == -2) {
        PyErr_SetString(PyExc_ValueError, "the values exceed int32 offsets (2 GiB of text); pass fewer rows");
        return NULL;
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (data == NULL) return NULL;
    int copied;
    Py_BEGIN_ALLOW_THREADS
    copied = copy_parts(parts, count, rows, PyBytes_AS_STRING(data), total);
    Py_END_ALLOW_THREADS
    if (copied < 0) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_ValueError, "a part changed while the values were assembled");
        return NULL;
    }
    return data;
}

PyDoc_STRVAR(assemble_doc,
"assemble(rows, parts, offsets) -> bytes\n--\n\n"
"Concatenate, for each of rows rows, its text from every part, as an Arrow string array.\n\n"
"A part is bytes (the same literal in every row) or a tuple (offsets, data, index): an Arrow\n"
"string array's int32 offsets (len(pool)+1) and data buffer, and an int64 array of rows pool\n"
"entries, or None when the pool holds one value per row (row i takes entry i). Writes the\n"
"rows+1 int32 offsets into offsets (a writable buffer) and returns the data. Raises ValueError\n"
"for an index outside its pool, a malformed pool, or values beyond int32 offsets.");

static PyObject *assemble(PyObject *self, PyObject *args) {
    Py_ssize_t rows;
    PyObject *parts_obj;
    Py_buffer offsets;
    if (!PyArg_ParseTuple(args, "nOw*", &rows, &parts_obj, &offsets)) return NULL;
    PyObject *result = NULL, *sequence = PySequence_Fast(parts_obj, "parts must be a sequence");
    part_t *parts = NULL;
    Py_ssize_t count = 0, held = 0;
    if (sequence == NULL) goto done;
    count = PySequence_Fast_GET_SIZE(sequence);
    if (rows < 0 || offsets.len != (rows + 1) * 4) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold rows+1 int32 values");
        goto done;
    }
    parts = PyMem_Calloc(count ? count : 1, sizeof *parts);
    if (parts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; held < count; held++)
        if (part_acquire(PySequence_Fast_GET_ITEM(sequence, held), rows, &parts[held]) < 0) goto done;
    result = assemble_parts(parts, count, rows, offsets.buf);
done:
    for (Py_ssize_t p = 0; p < held; p++) part_release(&parts[p]);
    PyMem_Free(parts);
    Py_XDECREF(sequence);
    PyBuffer_Release(&offsets);
    return result;
}

static PyMethodDef methods[] = {
    {"assemble", assemble, METH_VARARGS, assemble_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_masking_assemble",
    "Per-row concatenation of literals and pool entries into Arrow strings, for masking.fakes.", -1, methods,
};

PyMODINIT_FUNC PyInit__masking_assemble(void) { return PyModule_Create(&module); }
