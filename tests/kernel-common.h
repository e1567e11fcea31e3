/* SPDX-License-Identifier: MIT
 *
 * kernel-common — helpers shared by the tests/test-kernel-<family>.c programs: a seeded
 * random generator (the seed is printed with every failure; TESSERA_TEST_SEED overrides
 * it), the pair of backends under test (the CPU reference and the CPU fast path), upload
 * and download shortcuts, f16/bf16 rounding done independently of the engine, and the
 * comparisons (NMSE between backends, element-wise against double-precision math,
 * NaN/Inf agreement).
 */
#ifndef TS_KERNEL_COMMON_H
#define TS_KERNEL_COMMON_H

#include "backend/ts-backend.h"

#include <glib.h>

typedef struct {
  guint64 state;
} tk_rng;

/* The seed of this run: TESSERA_TEST_SEED when set, else a fixed value. */
guint64 tk_seed (void);
/* A generator for one test case: the run's seed mixed with `stream`, so cases do not share
 * draws and a failing case can be replayed alone. */
void tk_rng_init (tk_rng *rng, guint64 stream);
float tk_uniform (tk_rng *rng, float lo, float hi);
float tk_normal (tk_rng *rng);
void tk_fill_uniform (tk_rng *rng, float *p, size_t n, float lo, float hi);
void tk_fill_normal (tk_rng *rng, float *p, size_t n, float mean, float std);

/* g_test_init, and removes TS_CPU_REFERENCE from the environment so that "cpu" really is
 * the fast path. */
void tk_init (int *argc, char ***argv);

/* The backends compared by every kernel test. With TESSERA_TEST_BACKEND=vulkan in the
 * environment the backend under test is Vulkan instead of the CPU fast path (the
 * `vulkan` suite runs every kernel test that way); the program then exits 77 (skip) when
 * no Vulkan device exists, and only then. */
typedef struct {
  ts_backend ref;  /* "cpu-ref" */
  ts_backend fast; /* "cpu", or "vulkan" */
} tk_backends;

/* TRUE when TESSERA_TEST_BACKEND=vulkan: `fast` is the Vulkan backend. */
gboolean tk_testing_vulkan (void);

void tk_backends_init (tk_backends *b);
/* A CPU backend (the reference or the fast path, 2 threads) in `precision`, which must
 * take effect as asked. */
void tk_cpu_backend_new (ts_backend *be, gboolean reference, ts_precision precision);
void tk_backends_clear (tk_backends *b);

/* A buffer holding n floats copied from data (zeros when data is NULL). */
ts_buffer *tk_buffer (const ts_backend *be, const float *data, size_t n);
/* The n floats at float offset `at` of buf, in a g_malloc'd array. */
float *tk_download (const ts_backend *be, ts_buffer *buf, size_t at, size_t n);
void tk_buffer_free (const ts_backend *be, ts_buffer *buf);

/* Rounds values to dtype (F32: unchanged; F16/BF16: nearest even) in place. */
void tk_round_to (ts_dtype dtype, float *values, size_t n);
uint16_t tk_f32_to_f16 (float f);
uint16_t tk_f32_to_bf16 (float f);

/* Uploads `values` as a weight of `dtype`. The values are first rounded to dtype in place,
 * so the caller's array holds exactly what the weight holds. */
void tk_weight (const ts_backend *be, ts_weight *w, const char *name, ts_dtype dtype,
                float *values, int n_dims, const int64_t *shape);

/* sum (got - ref)^2 / sum ref^2 over the entries finite in both. */
double tk_nmse (const float *ref, const float *got, size_t n);

/* Fails (naming `what` and the seed) unless ref and got agree on which entries are NaN or
 * infinite and their NMSE is <= tol. */
void tk_check_nmse (const char *what, const float *ref, const float *got, size_t n, double tol);
/* Fails unless every value is finite. */
void tk_check_finite (const char *what, const float *p, size_t n);
/* Fails unless |got - want| <= atol + rtol |want| everywhere. */
void tk_check_close (const char *what, const float *got, const double *want, size_t n,
                     double atol, double rtol);
/* Fails unless got[i] == want[i] bit for bit. */
void tk_check_equal (const char *what, const float *got, const float *want, size_t n);
/* Fails unless status == expected, and prints err's message (which must be non-empty). */
void tk_check_status (const char *what, ts_status status, ts_status expected, const ts_error *err);

#endif /* TS_KERNEL_COMMON_H */
