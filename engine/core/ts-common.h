/* SPDX-License-Identifier: MIT
 *
 * ts-common — internal helpers every engine module uses: filling a ts_error, logging,
 * programmer-error assertions and overflow-checked size arithmetic. Not part of the
 * public API (tessera.h); app code never sees this header.
 */
#ifndef TS_COMMON_H
#define TS_COMMON_H

#include "tessera.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__)
#define TS_PRINTF(a, b) __attribute__ ((format (printf, a, b)))
#else
#define TS_PRINTF(a, b)
#endif

/* Fills err (when non-NULL) and returns code, so callers can write
 * `return ts_error_set (err, TS_ERR_FORMAT, "...", ...);`. */
ts_status ts_error_set (ts_error *err, ts_status code, const char *fmt, ...) TS_PRINTF (3, 4);
ts_status ts_error_setv (ts_error *err, ts_status code, const char *fmt, va_list ap);
/* Prepends "prefix: " to an already filled message (for adding file or component names). */
void ts_error_prefix (ts_error *err, const char *fmt, ...) TS_PRINTF (2, 3);

void ts_log (ts_log_level level, const char *fmt, ...) TS_PRINTF (2, 3);
#define TS_LOG_E(...) ts_log (TS_LOG_ERROR, __VA_ARGS__)
#define TS_LOG_W(...) ts_log (TS_LOG_WARN, __VA_ARGS__)
#define TS_LOG_I(...) ts_log (TS_LOG_INFO, __VA_ARGS__)
#define TS_LOG_D(...) ts_log (TS_LOG_DEBUG, __VA_ARGS__)

/* Evaluates `call`, an expression of type ts_status; when it fails, stores the status in
 * the caller's `st` and jumps to the caller's `fail:` label, the one cleanup ladder of a
 * function (STYLE.md §3). The function declares `ts_status st` and has the label; the
 * callee has already filled `err`. */
#define TS_TRY(call)              \
  do {                            \
    if ((st = (call)) != TS_OK)   \
      goto fail;                  \
  } while (0)

/* For violated internal invariants only — never for file contents or user input. */
#define TS_ASSERT(cond)                                                                    \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf (stderr, "tessera: %s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
      abort ();                                                                            \
    }                                                                                      \
  } while (0)

/* *out = a * b; false on overflow (and *out is left unspecified). */
static inline bool
ts_mul_size (size_t a, size_t b, size_t *out)
{
  return !__builtin_mul_overflow (a, b, out);
}

static inline bool
ts_add_size (size_t a, size_t b, size_t *out)
{
  return !__builtin_add_overflow (a, b, out);
}

/* Monotonic clock in seconds. */
double ts_time_now (void);

#endif /* TS_COMMON_H */
