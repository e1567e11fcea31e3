/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-upsample — nearest-neighbour 2x upsampling over NCHW, as F.interpolate
 * (scale_factor = 2, mode = "nearest") in the VQ-VAE decoder's Upsample2D: every input
 * pixel is copied to a 2x2 output patch. The fast path splits planes over the pool.
 */
#include "backend/cpu/ts-cpu.h"

/* Planes (batch * channel) [p0, p1). */
static void
upsample_planes (const ts_upsample_args *a, int64_t p0, int64_t p1)
{
  const float *x = ts_cpu_f32 (a->x);
  float *y = ts_cpu_f32 (a->y);
  int64_t w2 = 2 * a->w;

  for (int64_t p = p0; p < p1; p++) {
    const float *xp = x + p * a->h * a->w;
    float *yp = y + p * 4 * a->h * a->w;
    for (int64_t i = 0; i < a->h; i++) {
      float *row = yp + 2 * i * w2;
      for (int64_t j = 0; j < a->w; j++)
        row[2 * j] = row[2 * j + 1] = xp[i * a->w + j];
      memcpy (row + w2, row, (size_t) w2 * sizeof (float));
    }
  }
}

static void
upsample_task (void *data, int64_t begin, int64_t end, int thread)
{
  (void) thread;
  upsample_planes (data, begin, end);
}

ts_status
ts_cpu_upsample (void *impl, const ts_upsample_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;

  (void) err; /* cannot fail: the arguments were checked above the backends */
  if (cpu->reference)
    upsample_planes (a, 0, a->batch * a->c);
  else
    ts_cpu_parallel_for (cpu, a->batch * a->c, 1 + 16384 / (a->h * a->w + 1), upsample_task,
                         (void *) a);
  return TS_OK;
}
