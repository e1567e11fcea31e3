/* SPDX-License-Identifier: MIT
 *
 * ts-stage — what the pipeline stages (ts-text-encoder, ts-transformer, ts-vq) share:
 * the weight source they upload from, the capture hook through which the golden checks
 * read intermediates, and the abort hook polled between blocks.
 */
#ifndef TS_STAGE_H
#define TS_STAGE_H

#include "backend/ts-backend.h"

/* Receives an intermediate tensor by its golden name ("mid.embed_out", "mm_block0.1", ...)
 * as host F32 data in the reference layout; the data is valid only during the call.
 * Stages download intermediates only when a capture hook is given, so the normal path pays
 * nothing for it. */
typedef void (*ts_capture_fn) (void *user_data, const char *name, const float *data, int n_dims,
                               const int64_t *shape);

typedef struct {
  ts_capture_fn fn;
  void *user_data;
} ts_capture;

/* Returns true to stop; polled before each step and between transformer blocks. */
typedef bool (*ts_abort_fn) (void *user_data);

typedef struct {
  ts_abort_fn fn;
  void *user_data;
} ts_abort;

static inline bool
ts_abort_requested (const ts_abort *a)
{
  return a && a->fn && a->fn (a->user_data);
}

static inline bool
ts_capture_wanted (const ts_capture *c)
{
  return c && c->fn;
}

#endif /* TS_STAGE_H */
