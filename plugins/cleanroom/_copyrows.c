/*
 * Read the rows of a running COPY ... TO STDOUT from libpq into a bytearray, many rows a call.
 *
 * cleanroom.source reads PostgreSQL tables as COPY's CSV. Driven from Python, every row costs
 * a call to psycopg's get_copy_data, a memoryview and a bytearray append: the largest Python
 * cost of a read (0.37 s of CPU per 2M narrow rows, 0.11 s here). Here the loop over rows runs
 * in C without the GIL: PQgetCopyData in async mode hands over the rows libpq already holds,
 * each is copied into one growing buffer and freed, and the buffer is appended to the caller's
 * bytearray once.
 *
 * The module does not link libpq (so it builds without libpq's headers). The caller passes
 * the addresses of PQgetCopyData and PQfreemem taken from the very libpq instance psycopg
 * uses, with psycopg's PGconn pointer: a PGconn must only ever reach the library that made it
 * (see cleanroom.source._libpq_copy_functions). Waiting for the socket, and what the end or an
 * error of the COPY means, stay in Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* libpq's documented signatures: int PQgetCopyData(PGconn *, char **, int); void PQfreemem(void *). */
typedef int (*get_copy_data_fn)(void *conn, char **buffer, int async);
typedef void (*freemem_fn)(void *ptr);

/* Why reading stopped, besides PQgetCopyData's own 0 (no whole row buffered), -1 and -2. */
#define ROWS_READ 1
#define OUT_OF_MEMORY (-3)

#define FIRST_CAPACITY ((size_t)1 << 16)

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

/* Append len bytes, doubling the capacity as needed; 0 when memory runs out. */
static int append(buffer *b, const char *bytes, size_t len) {
    if (len > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : FIRST_CAPACITY;
        while (cap - b->len < len) {
            if (cap > (size_t)PY_SSIZE_T_MAX / 2) return 0;
            cap *= 2;
        }
        char *grown = realloc(b->data, cap);
        if (grown == NULL) return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, len);
    b->len += len;
    return 1;
}

/* Move up to max_rows buffered rows into b, counting them in *rows; return why it stopped. */
static int take_rows(void *conn, get_copy_data_fn get_copy_data, freemem_fn freemem, buffer *b,
                     Py_ssize_t max_rows, Py_ssize_t *rows) {
    while (*rows < max_rows) {
        char *row = NULL;
        int size = get_copy_data(conn, &row, 1);
        if (size <= 0) return size; /* libpq hands over no buffer then */
        int kept = append(b, row, (size_t)size);
        freemem(row);
        if (!kept) return OUT_OF_MEMORY;
        (*rows)++;
    }
    return ROWS_READ;
}

/* Append the buffer to the bytearray; 0, with an exception set, when it cannot grow. */
static int extend(PyObject *into, const buffer *b) {
    if (b->len == 0) return 1;
    Py_ssize_t old = PyByteArray_GET_SIZE(into);
    if (b->len > (size_t)(PY_SSIZE_T_MAX - old)) {
        PyErr_NoMemory();
        return 0;
    }
    if (PyByteArray_Resize(into, old + (Py_ssize_t)b->len) < 0) return 0;
    memcpy(PyByteArray_AS_STRING(into) + old, b->data, b->len);
    return 1;
}

/* "O&" converter: a Python int holding a non-null address. */
static int address(PyObject *obj, void *out) {
    void *value = PyLong_AsVoidPtr(obj);
    if (value == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "an address must not be 0");
        return 0;
    }
    *(void **)out = value;
    return 1;
}

PyDoc_STRVAR(read_rows_doc,
"read_rows(conn, get_copy_data, freemem, into, max_rows) -> (rows, status)\n--\n\n"
"Append up to max_rows rows of the COPY OUT running on conn to the bytearray into.\n\n"
"conn is a PGconn pointer; get_copy_data and freemem are the addresses of PQgetCopyData and\n"
"PQfreemem in the libpq that made it. Only rows libpq already holds are taken (async mode),\n"
"without the GIL. rows is how many were appended; status is 1 when that is max_rows, else\n"
"PQgetCopyData's last result: 0 when no whole row is buffered (wait for the socket, consume\n"
"input, call again), -1 when the COPY has ended, -2 on an error (see PQerrorMessage).");

static PyObject *read_rows(PyObject *self, PyObject *args) {
    void *conn, *get_copy_data, *freemem;
    PyObject *into;
    Py_ssize_t max_rows;
    if (!PyArg_ParseTuple(args, "O&O&O&O!n", address, &conn, address, &get_copy_data, address, &freemem,
                          &PyByteArray_Type, &into, &max_rows))
        return NULL;
    if (max_rows < 1) {
        PyErr_SetString(PyExc_ValueError, "max_rows must be at least 1");
        return NULL;
    }
    buffer b = {NULL, 0, 0};
    Py_ssize_t rows = 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = take_rows(conn, (get_copy_data_fn)(uintptr_t)get_copy_data, (freemem_fn)(uintptr_t)freemem, &b,
                       max_rows, &rows);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (status == OUT_OF_MEMORY) PyErr_NoMemory();
    else if (extend(into, &b)) result = Py_BuildValue("ni", rows, status);
    free(b.data);
    return result;
}

static PyMethodDef methods[] = {
    {"read_rows", read_rows, METH_VARARGS, read_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cleanroom_copy", "COPY OUT rows read from libpq for cleanroom.source.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__cleanroom_copy(void) { return PyModule_Create(&module); }
