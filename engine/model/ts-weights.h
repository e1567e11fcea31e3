/* SPDX-License-Identifier: MIT
 *
 * ts-weights — how every stage takes its weights from a checkpoint onto the backend: look
 * the official key up, check that it is a float tensor (F32/F16/BF16) of the shape the
 * config implies and holds no NaN or Inf, upload it, and keep it until the stage is freed.
 * One place, so every stage names a missing, misshapen or non-finite tensor the same way.
 */
#ifndef TS_WEIGHTS_H
#define TS_WEIGHTS_H

#include "backend/ts-backend.h"
#include "core/ts-common.h"
#include "model/ts-safetensors.h"

typedef struct ts_weight_set ts_weight_set;

/* component names the stage in messages ("transformer"); borrowed, must outlive the set.
 * NULL when out of memory. */
ts_weight_set *ts_weight_set_new (const ts_backend *be, const char *component);
/* Frees every uploaded weight. NULL-safe. */
void ts_weight_set_free (ts_weight_set *ws);

/* Loads the tensor named printf(fmt, ...) from ckpt, expecting n_dims/shape, and uploads it
 * with upload_n_dims dimensions (0: as stored; 2 with a [out, in, 1, 1] kernel gives the
 * matrix [out, in], for 1x1 convolutions run as matmuls). The result stays valid until the
 * set is freed. NULL with err set: TS_ERR_FORMAT naming the tensor when it is missing or
 * has another dtype or shape or holds a NaN or Inf (naming the file too), or the backend's
 * error. */
const ts_weight *ts_weight_set_load (ts_weight_set *ws, const ts_st_set *ckpt, int n_dims,
                                     const int64_t *shape, int upload_n_dims, ts_error *err,
                                     const char *fmt, ...) TS_PRINTF (7, 8);

/* The calling thread's abort hook for loading: ts_weight_set_load polls fn (data) before
 * each tensor and fails with TS_ERR_CANCELLED when it returns true, so that a load of
 * gigabytes of weights can be cancelled between tensors. NULL fn clears it. The model
 * loader sets it for the duration of ts_model_load. */
void ts_weights_set_abort (bool (*fn) (void *data), void *data);

#endif /* TS_WEIGHTS_H */
