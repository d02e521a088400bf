/* The numeric kernel of modelpilot.drift: a chunk's bins, counts, sums and moments in two passes.
 *
 * Pass one bins every value (its cell on the uniform grid, the lookup table's lower bound, a few
 * steps up the edges or a binary search in a crowded cell) into counts and per-bin sums, counts the
 * missing and infinite values, and finds the finite minimum and maximum. The finite values are then
 * summed, and their squared deviations from the mean, with numpy's pairwise summation. Everything is
 * what NumericBinner.count_and_sum and numeric_chunk_stats compute with numpy, bit for bit; called
 * through ctypes, which releases the GIL, so the lanes bin columns on every core.
 *
 * Built by setuptools as an optional extension (the module init is there only so the file is a
 * valid extension); without it the numpy kernel runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* a*b+c must round twice, as numpy's separate multiply and add do: no fused multiply-add (GCC takes
 * -ffp-contract=off from pyproject.toml; clang takes the pragma) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "_export.h"

/* out_i */
enum { I_NAN, I_POSINF, I_NEGINF, I_FINITE, I_SLOTS };
/* out_d */
enum { D_TOTAL, D_MIN, D_MAX, D_SLOTS };

static Py_ssize_t search_left(const double *edges, Py_ssize_t n, double v)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + ((hi - lo) >> 1);
        if (edges[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* numpy's pairwise summation of contiguous doubles (numpy/_core/src/umath/loops_utils.h.src), term(i) summed */
#define PAIRWISE(NAME, TERM)                                                                     \
    static double NAME(const double *a, Py_ssize_t n, double mean)                              \
    {                                                                                            \
        (void)mean;                                                                              \
        if (n < 8) {                                                                             \
            double res = -0.0;                                                                   \
            for (Py_ssize_t i = 0; i < n; i++)                                                   \
                res += TERM(a[i]);                                                               \
            return res;                                                                          \
        }                                                                                        \
        if (n <= 128) {                                                                          \
            double r[8];                                                                         \
            Py_ssize_t i;                                                                        \
            for (int k = 0; k < 8; k++)                                                          \
                r[k] = TERM(a[k]);                                                               \
            for (i = 8; i < n - (n % 8); i += 8)                                                 \
                for (int k = 0; k < 8; k++)                                                      \
                    r[k] += TERM(a[i + k]);                                                      \
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));      \
            for (; i < n; i++)                                                                   \
                res += TERM(a[i]);                                                               \
            return res;                                                                          \
        }                                                                                        \
        Py_ssize_t n2 = n / 2;                                                                   \
        n2 -= n2 % 8;                                                                            \
        return NAME(a, n2, mean) + NAME(a + n2, n - n2, mean);                                   \
    }

#define AS_IS(v) (v)
#define SQUARED_DEVIATION(v) (((v) - mean) * ((v) - mean))
PAIRWISE(pairwise_sum, AS_IS)
PAIRWISE(pairwise_sq_dev, SQUARED_DEVIATION)

/* Bin x[0:n] into counts/sums (nedges + 1 slots), count what out_i names, find the finite minimum and
 * maximum and sum the finite values (out_d). The finite values are copied to finite_buf (n slots) when
 * x holds any other value (out_i[I_FINITE] < n): the squared deviations are then taken over finite_buf.
 * A zero extreme is returned as found: its sign may not be numpy's, which the caller settles.
 * The table is lut16 (int16: a quarter of the cache, which matters when a chunk's columns take turns)
 * when given, else lut; each exported variant below passes one and NULL, so each compiles to its own loop. */
static inline void numeric_chunk(const double *x, Py_ssize_t n, const double *edges, Py_ssize_t nedges,
                                 const Py_ssize_t *lut, const int16_t *lut16, Py_ssize_t ncells, double origin,
                                 double scale, int64_t *counts, double *sums, double *finite_buf, int64_t *out_i,
                                 double *out_d)
{
    const double top = (double)(ncells - 1);
    int64_t nan = 0, posinf = 0, neginf = 0;
    double lo = INFINITY, hi = -INFINITY;
    Py_ssize_t kept = 0;
    int compacting = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const double v = x[i];
        if (!(fabs(v) < INFINITY)) { /* NaN or an infinity: rare, off the fast path */
            if (!compacting) {
                memcpy(finite_buf, x, (size_t)i * sizeof(double));
                kept = i;
                compacting = 1;
            }
            if (v != v) {
                nan++;
                continue;
            }
            if (v > 0) { /* +inf: the top bin */
                posinf++;
                counts[nedges] += 1;
                sums[nedges] += v;
            } else { /* -inf: the bottom bin */
                neginf++;
                counts[0] += 1;
                sums[0] += v;
            }
            continue;
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        if (compacting)
            finite_buf[kept++] = v;
        const double c = (v - origin) * scale;
        Py_ssize_t cell;
        if (!(c > 0.0))
            cell = 0;
        else if (c >= top)
            cell = ncells - 1;
        else
            cell = (Py_ssize_t)c;
        Py_ssize_t b = lut16 ? (Py_ssize_t)lut16[cell] : lut[cell];
        if (b < 0)
            b = search_left(edges, nedges, v);
        else
            while (b < nedges && v > edges[b])
                b++;
        counts[b] += 1;
        sums[b] += v;
    }
    const double *finite = compacting ? finite_buf : x;
    const Py_ssize_t nfinite = compacting ? kept : n;
    out_i[I_NAN] = nan;
    out_i[I_POSINF] = posinf;
    out_i[I_NEGINF] = neginf;
    out_i[I_FINITE] = nfinite;
    out_d[D_TOTAL] = 0.0 + pairwise_sum(finite, nfinite, 0.0); /* numpy's reduction starts from +0.0 */
    out_d[D_MIN] = lo;
    out_d[D_MAX] = hi;
}

MP_EXPORT void mp_numeric_chunk(const double *x, Py_ssize_t n, const double *edges, Py_ssize_t nedges,
                                const Py_ssize_t *lut, Py_ssize_t ncells, double origin, double scale,
                                int64_t *counts, double *sums, double *finite_buf, int64_t *out_i, double *out_d)
{
    numeric_chunk(x, n, edges, nedges, lut, NULL, ncells, origin, scale, counts, sums, finite_buf, out_i, out_d);
}

MP_EXPORT void mp_numeric_chunk16(const double *x, Py_ssize_t n, const double *edges, Py_ssize_t nedges,
                                  const int16_t *lut, Py_ssize_t ncells, double origin, double scale,
                                  int64_t *counts, double *sums, double *finite_buf, int64_t *out_i, double *out_d)
{
    numeric_chunk(x, n, edges, nedges, NULL, lut, ncells, origin, scale, counts, sums, finite_buf, out_i, out_d);
}

/* The pairwise sum of (v - mean)^2 over the finite values (x, or finite_buf when compacted). */
MP_EXPORT double mp_squared_deviations(const double *finite, Py_ssize_t n, double mean)
{
    return 0.0 + pairwise_sq_dev(finite, n, mean);
}

/* The lookup table of NumericBinner (see its __init__): for each of the grid's cells, the number of edges below
 * its widened lower bound, or -1 when more than max_rounds edges lie within its widened bounds; lut has grid + 3
 * slots. out_i[0] is the most steps any other cell needs, out_i[1] whether any cell is crowded. The grid points
 * lo_g + width * (j - 1) are the ones numpy computes (a multiply, then an add), so the table is numpy's. */
MP_EXPORT void mp_lookup_table(const double *edges, Py_ssize_t nedges, double lo_g, double width, Py_ssize_t grid,
                               Py_ssize_t max_rounds, Py_ssize_t *lut, int64_t *out_i)
{
    /* below(j) = #edges < points[j], j = 0 .. grid + 3; the points rise, so one walk up the edges serves all */
    Py_ssize_t ahead = 0, behind = 0, rounds = 0;
    int crowded = 0;
    lut[0] = 0;
    for (Py_ssize_t j = 0; j <= grid; j++) {
        const double low_point = lo_g + width * (double)(j - 1);
        const double high_point = lo_g + width * (double)(j + 2);
        while (behind < nedges && edges[behind] < low_point)
            behind++;
        if (ahead < behind)
            ahead = behind;
        while (ahead < nedges && edges[ahead] < high_point)
            ahead++;
        const Py_ssize_t steps = ahead - behind;
        if (steps > max_rounds) {
            lut[j + 1] = -1;
            crowded = 1;
        } else {
            lut[j + 1] = behind;
            if (steps > rounds)
                rounds = steps;
        }
    }
    lut[grid + 2] = nedges;
    out_i[0] = rounds;
    out_i[1] = crowded;
}

static struct PyModuleDef binning_module = {PyModuleDef_HEAD_INIT, "_binning", NULL, -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__binning(void) { return PyModule_Create(&binning_module); }
