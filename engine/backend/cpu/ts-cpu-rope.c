/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-rope — rotary position embedding applied in place to Q and K of the
 * transformer's joint attention, in the interleaved convention of diffusers'
 * apply_rotary_emb (use_real_unbind_dim = -1): adjacent channels (2j, 2j+1) form a pair
 * rotated by the angle whose cos/sin the tables hold at column 2j. The fast path runs the
 * same loop over blocks of sequence positions on the pool.
 */
#include "backend/cpu/ts-cpu.h"

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
  int64_t per_row;

  (void) err; /* cannot fail: the arguments were checked above the backends */
  if (cpu->reference) {
    rope_rows (a, 0, a->seq);
    return TS_OK;
  }
  per_row = a->batch * a->heads * a->d_head + 1;
  ts_cpu_parallel_for (cpu, a->seq, 1 + 16384 / per_row, rope_task, (void *) a);
  return TS_OK;
}
