/*
 * cosloss_cli.core._kernel: the three sums of the cosine loss in one pass over the data.
 *
 * Why this exists: numpy has no float32 x float32 -> float64 dot product, so the
 * pure-numpy path (_fallback.row_sums) converts each chunk to float64 and then runs
 * three einsums over it: five passes where one would do. On 2 GB inputs that is
 * twice the time of just reading the files. This loop reads each value once,
 * widens it to double, and accumulates the dot product and both squared norms.
 *
 * Accuracy: every product and sum is in double, as in the numpy path; only the
 * order of the additions differs (8 independent lanes, combined in a fixed order),
 * so a result depends only on its own vector, not on block sizes or threads.
 * Built with -ffp-contract=off, so the AVX2 and the baseline clone give the same bits.
 *
 * The module is optional: core.py falls back to _fallback.py when it is not built (no
 * compiler, or one without GCC/Clang vector extensions).
 * The GIL is released while summing, so blocks are reduced on all cores.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* GCC and Clang vector extensions; elsewhere (MSVC) the build fails, which setup.py allows:
   cosloss then sums with numpy. */
#if !defined(__GNUC__) && !defined(__clang__)
#error "the cosloss kernel needs GCC or Clang vector extensions"
#endif
typedef double f64x4 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));

/* An AVX2 clone next to the baseline one, chosen at load time by the CPU (gcc on x86-64 Linux).
   By feature ("avx2"), not "arch=haswell": gcc picks an arch= clone by CPU model, so every
   later Xeon (and KVM's generic "Intel Xeon Processor") ran the baseline clone, 30% slower. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MULTI_ARCH __attribute__((target_clones("avx2", "default")))
#else
#define MULTI_ARCH
#endif

/* Macros, not functions: an inline function compiled for the baseline target would not
   be inlined into the AVX2 clone, and would pass its vectors through memory. */
#define LOAD_f32(dst, src)                                                                           \
    do {                                                                                             \
        f32x4 narrow_;                                                                               \
        memcpy(&narrow_, (src), sizeof narrow_);                                                     \
        (dst) = __builtin_convertvector(narrow_, f64x4);                                             \
    } while (0)
#define LOAD_f64(dst, src) memcpy(&(dst), (src), sizeof(dst))
#define LANES_SUM(a, b) ((((a)[0] + (b)[0]) + ((a)[1] + (b)[1])) + (((a)[2] + (b)[2]) + ((a)[3] + (b)[3])))

/* D, X, Y += u*v, u*u, v*v for the entries U of a and V of b widened to double: the scalar step of
   every sum (a row's tail in ROW, each column in COLUMNS, each row down a column in ROWS_BY_COLUMN). */
#define ADD_PRODUCTS(D, X, Y, U, V)                                                                  \
    do {                                                                                             \
        double u_ = (double)(U), v_ = (double)(V);                                                   \
        (D) += u_ * v_;                                                                              \
        (X) += u_ * u_;                                                                              \
        (Y) += v_ * v_;                                                                              \
    } while (0)

/* The signature every kernel shares (kernel_fn below). */
#define KERNEL(NAME)                                                                                 \
    MULTI_ARCH static void NAME(const char *a_rows, const char *b_rows, Py_ssize_t rows,            \
                                Py_ssize_t width, Py_ssize_t astride, Py_ssize_t bstride,            \
                                double *restrict dot, double *restrict ll, double *restrict pp)

/*
 * ROW(TA, TB): dot[i], ll[i], pp[i] = sum a*b, a*a, b*b over the `width` entries of the
 * rows a and b (contiguous entries). One body for ROWS and ROWS_AT, so that a pair of
 * rows gets the same bits wherever its prediction row is read from.
 */
#define ROW(TA, TB)                                                                                  \
    do {                                                                                             \
        f64x4 d0 = {0}, d1 = {0}, x0 = {0}, x1 = {0}, y0 = {0}, y1 = {0};                            \
        Py_ssize_t j = 0;                                                                            \
        for (; j + 8 <= width; j += 8) {                                                             \
            f64x4 u0, u1, v0, v1;                                                                    \
            LOAD_##TA(u0, a + j);                                                                    \
            LOAD_##TA(u1, a + j + 4);                                                                \
            LOAD_##TB(v0, b + j);                                                                    \
            LOAD_##TB(v1, b + j + 4);                                                                \
            d0 += u0 * v0;                                                                           \
            d1 += u1 * v1;                                                                           \
            x0 += u0 * u0;                                                                           \
            x1 += u1 * u1;                                                                           \
            y0 += v0 * v0;                                                                           \
            y1 += v1 * v1;                                                                           \
        }                                                                                            \
        double dt = 0.0, xt = 0.0, yt = 0.0;                                                         \
        for (; j < width; j++)                                                                       \
            ADD_PRODUCTS(dt, xt, yt, a[j], b[j]);                                                    \
        dot[i] = LANES_SUM(d0, d1) + dt;                                                             \
        ll[i] = LANES_SUM(x0, x1) + xt;                                                              \
        pp[i] = LANES_SUM(y0, y1) + yt;                                                              \
    } while (0)

/*
 * ROWS(name, TA, TB): ROW for each row i. Rows of a and b start `astride`/`bstride`
 * bytes apart; entries within a row are contiguous.
 */
#define ROWS(NAME, TA, TB)                                                                            \
    KERNEL(NAME)                                                                                     \
    {                                                                                                \
        for (Py_ssize_t i = 0; i < rows; i++) {                                                      \
            const TA *a = (const TA *)(a_rows + i * astride);                                        \
            const TB *b = (const TB *)(b_rows + i * bstride);                                        \
            ROW(TA, TB);                                                                             \
        }                                                                                            \
    }

/*
 * ROWS_AT(name, TA, TB): ROW for row i of a and row at[i] of b, for the rows of a join:
 * the prediction rows are read where they are held instead of being gathered (copied)
 * into a block first. Rows in random order defeat the hardware prefetcher, so row
 * at[i + AHEAD] is prefetched while row i is summed (it pays on the join row:
 * bench/RESULTS.md, round 10).
 */
#define AHEAD 4
#define ROWS_AT(NAME, TA, TB)                                                                         \
    MULTI_ARCH static void NAME(const char *a_rows, const char *b_rows, const Py_ssize_t *at,        \
                                Py_ssize_t rows, Py_ssize_t width, Py_ssize_t astride,               \
                                Py_ssize_t bstride, double *restrict dot, double *restrict ll,       \
                                double *restrict pp)                                                 \
    {                                                                                                \
        Py_ssize_t row_bytes = width * (Py_ssize_t)sizeof(TB);                                       \
        for (Py_ssize_t i = 0; i < rows; i++) {                                                      \
            if (i + AHEAD < rows) { /* random rows: ask for a later one while summing this one */    \
                const char *next = b_rows + at[i + AHEAD] * bstride;                                 \
                for (Py_ssize_t k = 0; k < row_bytes; k += 64)                                       \
                    __builtin_prefetch(next + k, 0, 0);                                              \
            }                                                                                        \
            const TA *a = (const TA *)(a_rows + i * astride);                                        \
            const TB *b = (const TB *)(b_rows + at[i] * bstride);                                    \
            ROW(TA, TB);                                                                             \
        }                                                                                            \
    }

/*
 * COLUMNS(name, TA, TB): dot[j], ll[j], pp[j] += sum over rows of a*b, a*a, b*b in
 * column j (axis 0). The loop runs along the row, so it vectorizes without reordering
 * any sum: each column is summed row after row.
 */
#define COLUMNS(NAME, TA, TB)                                                                         \
    KERNEL(NAME)                                                                                     \
    {                                                                                                \
        for (Py_ssize_t i = 0; i < rows; i++) {                                                      \
            const TA *a = (const TA *)(a_rows + i * astride);                                        \
            const TB *b = (const TB *)(b_rows + i * bstride);                                        \
            for (Py_ssize_t j = 0; j < width; j++)                                                   \
                ADD_PRODUCTS(dot[j], ll[j], pp[j], a[j], b[j]);                                      \
        }                                                                                            \
    }

/*
 * ROWS_BY_COLUMN(name, TA, TB): what ROWS computes, for column-major blocks (the numeric
 * columns of Parquet and CSV files), without transposing them first. Here astride/bstride
 * are the distances between columns. Every sum gets the same additions in the same order
 * as in ROWS: entry j of the first width - width % 8 entries of a row goes to lane j % 8,
 * the rest to the tail sum, and the lanes are combined as LANES_SUM does, so the results
 * are identical to the bit. The loops run down each column, a tile of TILE rows at a time,
 * with the tile's accumulators (9 lanes x 3 sums x TILE doubles, 54 KB) in cache.
 */
#define TILE 256
#define COMBINE(s, r)                                                                                \
    (((((s)[0][r] + (s)[4][r]) + ((s)[1][r] + (s)[5][r])) + (((s)[2][r] + (s)[6][r]) + ((s)[3][r] + (s)[7][r]))) + \
     (s)[8][r])
#define ROWS_BY_COLUMN(NAME, TA, TB)                                                                  \
    KERNEL(NAME)                                                                                     \
    {                                                                                                \
        double acc[3][9][TILE];                                                                      \
        Py_ssize_t lanes_width = width - width % 8;                                                  \
        for (Py_ssize_t r0 = 0; r0 < rows; r0 += TILE) {                                             \
            Py_ssize_t n = rows - r0 < TILE ? rows - r0 : TILE;                                      \
            memset(acc, 0, sizeof acc);                                                              \
            for (Py_ssize_t j = 0; j < width; j++) {                                                 \
                const TA *a = (const TA *)(a_rows + j * astride) + r0;                               \
                const TB *b = (const TB *)(b_rows + j * bstride) + r0;                               \
                int lane = j < lanes_width ? (int)(j % 8) : 8;                                       \
                double *restrict d = acc[0][lane], *restrict x = acc[1][lane], *restrict y = acc[2][lane]; \
                for (Py_ssize_t r = 0; r < n; r++)                                                   \
                    ADD_PRODUCTS(d[r], x[r], y[r], a[r], b[r]);                                      \
            }                                                                                        \
            for (Py_ssize_t r = 0; r < n; r++) {                                                     \
                dot[r0 + r] = COMBINE(acc[0], r);                                                    \
                ll[r0 + r] = COMBINE(acc[1], r);                                                     \
                pp[r0 + r] = COMBINE(acc[2], r);                                                     \
            }                                                                                        \
        }                                                                                            \
    }

typedef float f32;
typedef double f64;

ROWS(rows_f32_f32, f32, f32)
ROWS(rows_f32_f64, f32, f64)
ROWS(rows_f64_f32, f64, f32)
ROWS(rows_f64_f64, f64, f64)
ROWS_AT(rows_at_f32_f32, f32, f32)
ROWS_AT(rows_at_f32_f64, f32, f64)
ROWS_AT(rows_at_f64_f32, f64, f32)
ROWS_AT(rows_at_f64_f64, f64, f64)
COLUMNS(columns_f32_f32, f32, f32)
COLUMNS(columns_f32_f64, f32, f64)
COLUMNS(columns_f64_f32, f64, f32)
COLUMNS(columns_f64_f64, f64, f64)
ROWS_BY_COLUMN(rows_by_column_f32_f32, f32, f32)
ROWS_BY_COLUMN(rows_by_column_f32_f64, f32, f64)
ROWS_BY_COLUMN(rows_by_column_f64_f32, f64, f32)
ROWS_BY_COLUMN(rows_by_column_f64_f64, f64, f64)

typedef void (*kernel_fn)(const char *, const char *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                          double *, double *, double *);
typedef void (*kernel_at_fn)(const char *, const char *, const Py_ssize_t *, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                             Py_ssize_t, double *, double *, double *);

/* 0 for float32, 1 for float64, -1 (with an exception set) otherwise. */
static int dtype_index(const Py_buffer *view, const char *name)
{
    const char *format = view->format;
    if (format[0] == '<' || format[0] == '=' || format[0] == '@')
        format++;
    if (strcmp(format, "f") == 0 && view->itemsize == 4)
        return 0;
    if (strcmp(format, "d") == 0 && view->itemsize == 8)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s must hold float32 or float64, not format '%s'", name, view->format);
    return -1;
}

/* A 2-D input whose rows are contiguous (any distance between rows): 0; with
   columns_too, one whose columns are contiguous instead: 1; otherwise -1 with an exception. */
static int check_input(const Py_buffer *view, const char *name, int columns_too)
{
    if (view->ndim != 2 || view->strides == NULL) {
        PyErr_Format(PyExc_ValueError, "%s must be 2-D", name);
        return -1;
    }
    int by_rows = view->shape[1] <= 1 || view->strides[1] == view->itemsize;
    int by_columns = !by_rows && columns_too && (view->shape[0] <= 1 || view->strides[0] == view->itemsize);
    if (!by_rows && !by_columns) {
        PyErr_Format(PyExc_ValueError, "%s must have contiguous rows%s", name, columns_too ? " or columns" : "");
        return -1;
    }
    Py_ssize_t step = by_rows ? view->strides[0] : view->strides[1];
    if (view->shape[by_rows ? 0 : 1] > 1 && step < 0) {
        PyErr_Format(PyExc_ValueError, "%s must not run backwards", name);
        return -1;
    }
    return by_columns;
}

static int check_output(const Py_buffer *view, Py_ssize_t length)
{
    const char *format = view->format;
    if (format[0] == '<' || format[0] == '=' || format[0] == '@')
        format++;
    if (strcmp(format, "d") != 0 || view->itemsize != 8) {
        PyErr_Format(PyExc_TypeError, "outputs must be float64, not format '%s'", view->format);
        return -1;
    }
    if (view->ndim != 1 || view->shape[0] != length || (length > 1 && view->strides[0] != 8)) {
        PyErr_Format(PyExc_ValueError, "outputs must be contiguous 1-D arrays of length %zd", length);
        return -1;
    }
    return 0;
}

/* The three outputs (dot, ll, pp) at `outputs`, each of `length` float64; 0, or -1 with an exception. */
static int check_outputs(const Py_buffer *outputs, Py_ssize_t length)
{
    for (int k = 0; k < 3; k++)
        if (check_output(&outputs[k], length) < 0)
            return -1;
    return 0;
}

/* The dtype indexes (0 float32, 1 float64) of the labels and predictions at `inputs`; 0, or -1 with an exception. */
static int input_types(const Py_buffer *inputs, int *ia, int *ib)
{
    *ia = dtype_index(&inputs[0], "labels");
    if (*ia < 0)
        return -1;
    *ib = dtype_index(&inputs[1], "predictions");
    return *ib < 0 ? -1 : 0;
}

static const kernel_fn rows_by_column_kernels[2][2] = {{rows_by_column_f32_f32, rows_by_column_f32_f64},
                                                       {rows_by_column_f64_f32, rows_by_column_f64_f64}};

static const kernel_at_fn row_at_kernels[2][2] = {{rows_at_f32_f32, rows_at_f32_f64},
                                                  {rows_at_f64_f32, rows_at_f64_f64}};

/* 0 for a contiguous 1-D buffer of Py_ssize_t-sized signed integers (numpy's intp) of `length`
   entries, each in [0, limit); -1 with an exception otherwise. */
static int check_rows(const Py_buffer *view, Py_ssize_t length, Py_ssize_t limit)
{
    const char *format = view->format;
    if (format[0] == '<' || format[0] == '=' || format[0] == '@')
        format++;
    int integer = strcmp(format, "n") == 0 || strcmp(format, "l") == 0 || strcmp(format, "q") == 0;
    if (!integer || view->itemsize != (Py_ssize_t)sizeof(Py_ssize_t)) {
        PyErr_Format(PyExc_TypeError, "rows must be intp, not format '%s'", view->format);
        return -1;
    }
    if (view->ndim != 1 || view->shape[0] != length || (length > 1 && view->strides[0] != view->itemsize)) {
        PyErr_Format(PyExc_ValueError, "rows must be a contiguous 1-D array of length %zd", length);
        return -1;
    }
    const Py_ssize_t *at = view->buf;
    for (Py_ssize_t i = 0; i < length; i++)
        if (at[i] < 0 || at[i] >= limit) {
            PyErr_Format(PyExc_IndexError, "row %zd is out of range for %zd predictions", at[i], limit);
            return -1;
        }
    return 0;
}

/*
 * per_row: row_sums (rows or columns contiguous), else column_sums (rows contiguous);
 * at: row_sums_at, whose third argument is the row of predictions for each row of labels
 * (both inputs row-major).
 */
static PyObject *run(PyObject *args, const kernel_fn table[2][2], int per_row, int at)
{
    int count = at ? 6 : 5; /* the inputs (labels, predictions[, rows]), then dot, ll, pp */
    PyObject *objects[6];
    Py_buffer views[6];
    int acquired = 0;
    PyObject *result = NULL;
    const char *name = at ? "row_sums_at" : per_row ? "row_sums" : "column_sums";
    if (!PyArg_UnpackTuple(args, name, count, count, &objects[0], &objects[1], &objects[2], &objects[3],
                           &objects[4], &objects[5]))
        return NULL;
    for (; acquired < count; acquired++) {
        int flags = acquired < count - 3 ? PyBUF_RECORDS_RO : PyBUF_RECORDS;
        if (PyObject_GetBuffer(objects[acquired], &views[acquired], flags) < 0)
            goto done;
    }
    int layout = check_input(&views[0], "labels", per_row && !at);
    if (layout < 0)
        goto done;
    int other_layout = check_input(&views[1], "predictions", per_row && !at);
    if (other_layout < 0)
        goto done;
    if (layout != other_layout) {
        PyErr_SetString(PyExc_ValueError, "labels and predictions must both have contiguous rows, or both columns");
        goto done;
    }
    if ((!at && views[0].shape[0] != views[1].shape[0]) || views[0].shape[1] != views[1].shape[1]) {
        PyErr_SetString(PyExc_ValueError, at ? "labels and predictions must have rows of the same length"
                                             : "labels and predictions must have the same shape");
        goto done;
    }
    Py_ssize_t rows = views[0].shape[0], width = views[0].shape[1];
    if (at && check_rows(&views[2], rows, views[1].shape[0]) < 0)
        goto done;
    int ia, ib;
    if (check_outputs(&views[count - 3], per_row ? rows : width) < 0 || input_types(views, &ia, &ib) < 0)
        goto done;
    double *dot = views[count - 3].buf, *ll = views[count - 2].buf, *pp = views[count - 1].buf;
    kernel_fn kernel = layout ? rows_by_column_kernels[ia][ib] : table[ia][ib];
    int step = layout ? 1 : 0; /* the distance between rows, or between columns */
    Py_BEGIN_ALLOW_THREADS
    if (at)
        row_at_kernels[ia][ib](views[0].buf, views[1].buf, views[2].buf, rows, width, views[0].strides[0],
                               views[1].strides[0], dot, ll, pp);
    else
        kernel(views[0].buf, views[1].buf, rows, width, views[0].strides[step], views[1].strides[step], dot, ll, pp);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    while (acquired-- > 0)
        PyBuffer_Release(&views[acquired]);
    return result;
}

static const kernel_fn row_kernels[2][2] = {{rows_f32_f32, rows_f32_f64}, {rows_f64_f32, rows_f64_f64}};
static const kernel_fn column_kernels[2][2] = {{columns_f32_f32, columns_f32_f64},
                                               {columns_f64_f32, columns_f64_f64}};

static PyObject *row_sums(PyObject *self, PyObject *args)
{
    (void)self;
    return run(args, row_kernels, 1, 0);
}

static PyObject *column_sums(PyObject *self, PyObject *args)
{
    (void)self;
    return run(args, column_kernels, 0, 0);
}

/* row_sums_at(labels, predictions, rows, dot, ll, pp): row_sums(labels, predictions[rows], dot,
   ll, pp), the same bits, without making predictions[rows]. */
static PyObject *row_sums_at(PyObject *self, PyObject *args)
{
    (void)self;
    return run(args, row_kernels, 1, 1);
}

/* The float64 buffer of an argument (C-contiguous), or NULL with an exception; `writable` for outputs. */
static int get_doubles(PyObject *object, Py_buffer *view, int writable, const char *name)
{
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->itemsize != (Py_ssize_t)sizeof(double) || view->format == NULL || strcmp(view->format, "d") != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous float64 buffer", name);
        return -1;
    }
    return 0;
}

/* Acquire `count` float64 buffers of one length (the last `outputs` of them writable); 0 or -1. */
static int get_rows(PyObject **objects, Py_buffer *views, int count, int outputs, const char **names)
{
    int acquired = 0;
    for (; acquired < count; acquired++)
        if (get_doubles(objects[acquired], &views[acquired], acquired >= count - outputs, names[acquired]) < 0)
            goto fail;
    for (int k = 1; k < count; k++)
        if (views[k].len != views[0].len) {
            PyErr_SetString(PyExc_ValueError, "the buffers must have the same length");
            goto fail;
        }
    return 0;
fail:
    while (acquired-- > 0)
        PyBuffer_Release(&views[acquired]);
    return -1;
}

/*
 * in_range(dot, ll, pp, tiny, huge) -> bool: every squared norm in (tiny, huge) and every dot
 * product finite, the common case of core.block_sums (scales all 1, nothing non-finite),
 * in one pass instead of five numpy reductions.
 */
static PyObject *in_range(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objects[3];
    double tiny, huge;
    if (!PyArg_ParseTuple(args, "OOOdd:in_range", &objects[0], &objects[1], &objects[2], &tiny, &huge))
        return NULL;
    static const char *names[3] = {"dot", "ll", "pp"};
    Py_buffer views[3];
    if (get_rows(objects, views, 3, 0, names) < 0)
        return NULL;
    const double *dot = views[0].buf, *ll = views[1].buf, *pp = views[2].buf;
    Py_ssize_t n = views[0].len / (Py_ssize_t)sizeof(double);
    int all = 1;
    for (Py_ssize_t i = 0; i < n && all; i++)
        all = ll[i] > tiny && ll[i] < huge && pp[i] > tiny && pp[i] < huge && isfinite(dot[i]);
    for (int k = 0; k < 3; k++)
        PyBuffer_Release(&views[k]);
    return PyBool_FromLong(all);
}

/*
 * in_range_losses(dot, ll, pp, root_eps, out): core._in_range_losses in one pass,
 *     out = clip(1 - dot / max(sqrt(ll), root_eps) / max(sqrt(pp), root_eps), 0, 2)
 * with a non-finite cosine taken as 0: the same float64 operations in the same order as
 * numpy's (sqrt and division correctly rounded, no contraction), so the same bits. For a
 * small pair's 1,000 rows the ten numpy calls it replaces cost more than their arithmetic.
 */
static PyObject *in_range_losses(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objects[4];
    double root_eps;
    if (!PyArg_ParseTuple(args, "OOOdO:in_range_losses", &objects[0], &objects[1], &objects[2], &root_eps, &objects[3]))
        return NULL;
    static const char *names[4] = {"dot", "ll", "pp", "out"};
    Py_buffer views[4];
    if (get_rows(objects, views, 4, 1, names) < 0)
        return NULL;
    const double *dot = views[0].buf, *ll = views[1].buf, *pp = views[2].buf;
    double *out = views[3].buf;
    Py_ssize_t n = views[0].len / (Py_ssize_t)sizeof(double);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        double norm_l = sqrt(ll[i]), norm_p = sqrt(pp[i]);
        double cosine = dot[i] / (norm_l >= root_eps ? norm_l : root_eps);
        cosine = cosine / (norm_p >= root_eps ? norm_p : root_eps);
        if (!isfinite(cosine))
            cosine = 0.0;
        double loss = 1.0 - cosine;
        loss = loss >= 0.0 ? loss : 0.0;
        out[i] = loss <= 2.0 ? loss : 2.0;
    }
    Py_END_ALLOW_THREADS
    for (int k = 0; k < 4; k++)
        PyBuffer_Release(&views[k]);
    Py_RETURN_NONE;
}

/*
 * fsum(values): the correctly rounded sum of a C-contiguous buffer of doubles, or None.
 *
 * Why: batch needs each pair's exact sum (the pooled mean is formed from them), and
 * math.fsum(array.tolist()) spends most of its time making and reading Python floats
 * (measured on batch's row: bench/RESULTS.md, round 10). This is CPython's own
 * algorithm (Shewchuk's non-overlapping partials, then the half-even fix-up across partials, as in mathmodule.c), so the
 * result is math.fsum's: a correctly rounded sum is unique. NaN, infinities, an
 * intermediate overflow or more than FSUM_PARTIALS partials return None, and the
 * caller asks math.fsum, whose answers and errors for those cases stay its own.
 */
#define FSUM_PARTIALS 64

static PyObject *fsum(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (view.itemsize != (Py_ssize_t)sizeof(double) || view.format == NULL || strcmp(view.format, "d") != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "fsum needs a contiguous buffer of float64");
        return NULL;
    }
    const double *values = (const double *)view.buf;
    Py_ssize_t count = view.len / (Py_ssize_t)sizeof(double);
    double partials[FSUM_PARTIALS];
    int n = 0, special = 0;
    double hi = 0.0, lo = 0.0, x, y, t, yr;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count && !special; k++) {
        x = values[k];
        if (!isfinite(x)) {
            special = 1;
            break;
        }
        int i = 0;
        for (int j = 0; j < n; j++) {
            y = partials[j];
            if (fabs(x) < fabs(y)) {
                t = x;
                x = y;
                y = t;
            }
            hi = x + y;
            yr = hi - x;
            lo = y - yr;
            if (lo != 0.0)
                partials[i++] = lo;
            x = hi;
        }
        n = i;
        if (x != 0.0) {
            if (!isfinite(x) || n >= FSUM_PARTIALS)
                special = 1; /* an intermediate overflow, or partials beyond the array */
            else
                partials[n++] = x;
        }
    }
    hi = 0.0;
    lo = 0.0;
    if (!special && n > 0) {
        hi = partials[--n];
        while (n > 0) { /* add from the top until the sum becomes inexact */
            x = hi;
            y = partials[--n];
            hi = x + y;
            yr = hi - x;
            lo = y - yr;
            if (lo != 0.0)
                break;
        }
        /* half-even rounding across partials (CPython's fix-up, for sum([1e-16, 1, 1e16])) */
        if (n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0))) {
            y = lo * 2.0;
            x = hi + y;
            yr = x - hi;
            if (y == yr)
                hi = x;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (special)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(hi);
}

static PyMethodDef methods[] = {
    {"row_sums", row_sums, METH_VARARGS,
     "row_sums(labels, predictions, dot, ll, pp)\n--\n\n"
     "Write each row's dot product and squared norms (float64) into dot, ll and pp.\n"
     "The inputs' rows, or (both) their columns, must be contiguous; the results are the same."},
    {"row_sums_at", row_sums_at, METH_VARARGS,
     "row_sums_at(labels, predictions, rows, dot, ll, pp)\n--\n\n"
     "row_sums(labels, predictions[rows], dot, ll, pp) without copying the rows (both inputs row-major)."},
    {"column_sums", column_sums, METH_VARARGS,
     "column_sums(labels, predictions, dot, ll, pp)\n--\n\n"
     "Add each column's dot product and squared norms (float64) to dot, ll and pp."},
    {"in_range", in_range, METH_VARARGS,
     "in_range(dot, ll, pp, tiny, huge)\n--\n\n"
     "Whether every squared norm is in (tiny, huge) and every dot product finite."},
    {"in_range_losses", in_range_losses, METH_VARARGS,
     "in_range_losses(dot, ll, pp, root_eps, out)\n--\n\n"
     "Write the clipped losses of in-range sums to out (core._in_range_losses in one pass)."},
    {"fsum", fsum, METH_O,
     "fsum(values)\n--\n\n"
     "math.fsum of a contiguous float64 buffer, or None for NaN, infinities and overflow (ask math.fsum)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernel", "Fused float64 sums for the cosine loss (see core.py).", -1, methods, NULL, NULL, NULL, NULL,
};

/* KERNEL_SOURCE: the SHA-256 of this file, passed by setup.py, so that a test can tell a
   kernel built from an older version of it (a copied or forgotten build) from a fresh one. */
#ifndef KERNEL_SOURCE
#define KERNEL_SOURCE "unknown"
#endif

PyMODINIT_FUNC PyInit__kernel(void)
{
    PyObject *kernel = PyModule_Create(&module);
    if (kernel != NULL && PyModule_AddStringConstant(kernel, "SOURCE", KERNEL_SOURCE) < 0) {
        Py_DECREF(kernel);
        return NULL;
    }
    return kernel;
}
