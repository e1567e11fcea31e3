/* SPDX-License-Identifier: MIT
 *
 * ts-common — error filling, the engine's logger and dtype names. See ts-common.h.
 */
#include "core/ts-common.h"

#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <time.h>

ts_status
ts_error_setv (ts_error *err, ts_status code, const char *fmt, va_list ap)
{
  if (err) {
    err->code = code;
    vsnprintf (err->message, sizeof err->message, fmt, ap);
  }
  return code;
}

ts_status
ts_error_set (ts_error *err, ts_status code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  ts_error_setv (err, code, fmt, ap);
  va_end (ap);
  return code;
}

void
ts_error_prefix (ts_error *err, const char *fmt, ...)
{
  char prefix[512], old[TS_ERROR_MESSAGE_MAX];
  va_list ap;

  if (!err)
    return;
  va_start (ap, fmt);
  vsnprintf (prefix, sizeof prefix, fmt, ap);
  va_end (ap);
  memcpy (old, err->message, sizeof old);
  /* Keep the prefix whole; the old message is cut if the two do not fit. */
  snprintf (err->message, sizeof err->message, "%s: %.*s", prefix,
            (int) (sizeof err->message - strlen (prefix) - 3), old);
}

const char *
ts_status_name (ts_status status)
{
  switch (status) {
  case TS_OK: return "TS_OK";
  case TS_ERR_INVALID_ARG: return "TS_ERR_INVALID_ARG";
  case TS_ERR_IO: return "TS_ERR_IO";
  case TS_ERR_FORMAT: return "TS_ERR_FORMAT";
  case TS_ERR_NOMEM: return "TS_ERR_NOMEM";
  case TS_ERR_UNSUPPORTED: return "TS_ERR_UNSUPPORTED";
  case TS_ERR_NOT_FOUND: return "TS_ERR_NOT_FOUND";
  case TS_ERR_CANCELLED: return "TS_ERR_CANCELLED";
  case TS_ERR_DEVICE: return "TS_ERR_DEVICE";
  }
  return "TS_ERR_UNKNOWN";
}

/* ---- logging ---- */

static ts_log_fn log_fn;
static void *log_data;
static atomic_int log_level = -1;

void
ts_log_set_handler (ts_log_fn fn, void *user_data)
{
  log_fn = fn;
  log_data = user_data;
}

void
ts_log_set_level (ts_log_level level)
{
  atomic_store (&log_level, (int) level);
}

ts_log_level
ts_log_get_level (void)
{
  int level = atomic_load (&log_level);
  if (level < 0) {
    static const char *names[] = { "error", "warn", "info", "debug", "trace" };
    const char *env = getenv ("TESSERA_LOG");
    level = TS_LOG_WARN;
    for (int i = 0; env && i < 5; i++)
      if (strcasecmp (env, names[i]) == 0)
        level = i;
    atomic_store (&log_level, level);
  }
  return (ts_log_level) level;
}

void
ts_log (ts_log_level level, const char *fmt, ...)
{
  static const char *tags[] = { "ERROR", "WARN", "INFO", "DEBUG", "TRACE" };
  char buf[2048];
  va_list ap;

  if (level > ts_log_get_level ())
    return;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (log_fn)
    log_fn (level, buf, log_data);
  else
    fprintf (stderr, "tessera %s: %s\n", tags[level], buf);
}

double
ts_time_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* ---- dtypes ---- */

static const struct {
  const char *name;
  size_t size;
} dtype_info[TS_DTYPE_COUNT] = {
  [TS_DTYPE_BOOL] = { "BOOL", 1 },    [TS_DTYPE_U8] = { "U8", 1 },
  [TS_DTYPE_I8] = { "I8", 1 },        [TS_DTYPE_F8_E4M3] = { "F8_E4M3", 1 },
  [TS_DTYPE_F8_E5M2] = { "F8_E5M2", 1 }, [TS_DTYPE_I16] = { "I16", 2 },
  [TS_DTYPE_U16] = { "U16", 2 },      [TS_DTYPE_F16] = { "F16", 2 },
  [TS_DTYPE_BF16] = { "BF16", 2 },    [TS_DTYPE_I32] = { "I32", 4 },
  [TS_DTYPE_U32] = { "U32", 4 },      [TS_DTYPE_F32] = { "F32", 4 },
  [TS_DTYPE_I64] = { "I64", 8 },      [TS_DTYPE_U64] = { "U64", 8 },
  [TS_DTYPE_F64] = { "F64", 8 },
};

const char *
ts_dtype_name (ts_dtype dtype)
{
  return (unsigned) dtype < TS_DTYPE_COUNT ? dtype_info[dtype].name : NULL;
}

size_t
ts_dtype_size (ts_dtype dtype)
{
  return (unsigned) dtype < TS_DTYPE_COUNT ? dtype_info[dtype].size : 0;
}
