/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-rope — rotary position embedding applied in place to Q and K of the
 * transformer's joint attention, in the interleaved convention of diffusers'
 * apply_rotary_emb (use_real_unbind_dim = -1): adjacent channels (2j, 2j+1) form a pair
 * rotated by the angle whose cos/sin the tables hold at column 2j. The fast path runs the
 * same loop over blocks of sequence positions on the pool.
 */
#include "backend/cpu/ts-cpu.h"

ts_status
ts_cpu_rope_check (const ts_rope_args *a, ts_error *err)
{
  int64_t sizes[6], width;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "rope: args is NULL");
  sizes[0] = a->batch, sizes[1] = a->seq, sizes[2] = a->heads, sizes[3] = a->d_head;
  sizes[4] = a->ldx, sizes[5] = a->bs_x;
  if ((st = ts_cpu_check_sizes ("rope", "batch,seq,heads,d_head,ldx,bs_x", sizes, 6, err))
      != TS_OK)
    return st;
  if (a->d_head % 2 != 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "rope: d_head = %lld is odd",
                         (long long) a->d_head);
  if (__builtin_mul_overflow (a->heads, a->d_head, &width))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "rope: heads * d_head overflows");
  if ((st = ts_cpu_check_batched ("rope", "x", a->x, a->batch, a->bs_x, a->seq, width, a->ldx,
                                  err))
          != TS_OK
      || (st = ts_cpu_check_matrix ("rope", "cos", a->cos, a->seq, a->d_head, a->d_head, err))
             != TS_OK
      || (st = ts_cpu_check_matrix ("rope", "sin", a->sin, a->seq, a->d_head, a->d_head, err))
             != TS_OK)
    return st;
  return TS_OK;
}

/* Rotates rows [s0, s1) of every batch and head. */
static void
rope_rows (const ts_rope_args *a, int64_t s0, int64_t s1)
{
  float *x = ts_cpu_f32 (a->x);
  const float *cos_t = ts_cpu_f32 (a->cos), *sin_t = ts_cpu_f32 (a->sin);

  for (int64_t b = 0; b < a->batch; b++) {
    for (int64_t s = s0; s < s1; s++) {
      const float *c = cos_t + s * a->d_head, *sn = sin_t + s * a->d_head;
      for (int64_t h = 0; h < a->heads; h++) {
        float *xr = x + b * a->bs_x + s * a->ldx + h * a->d_head;
        for (int64_t j = 0; j < a->d_head; j += 2) {
          float x0 = xr[j], x1 = xr[j + 1];
          xr[j] = x0 * c[j] - x1 * sn[j];
          xr[j + 1] = x1 * c[j] + x0 * sn[j];
        }
      }
    }
  }
}

static void
rope_task (void *data, int64_t begin, int64_t end, int thread)
{
  (void) thread;
  rope_rows (data, begin, end);
}

ts_status
ts_cpu_rope (void *impl, const ts_rope_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  ts_status st = ts_cpu_rope_check (a, err);
  int64_t per_row;

  if (st != TS_OK)
    return st;
  if (cpu->reference) {
    rope_rows (a, 0, a->seq);
    return TS_OK;
  }
  per_row = a->batch * a->heads * a->d_head + 1;
  ts_cpu_parallel_for (cpu, a->seq, 1 + 16384 / per_row, rope_task, (void *) a);
  return TS_OK;
}
