/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-attention — scaled dot-product attention for the CLIP text encoder (causal) and
 * the transformer's joint [text ; image] attention, computed as softmax(scale q k^T) v in
 * fp32 like the golden harness's polyfill of F.scaled_dot_product_attention. The
 * reference path handles one query row at a time with a seq_kv score vector, so no
 * seq x seq matrix is ever held.
 */
#include "ts-cpu.h"

#include <math.h>
#include <stdlib.h>

static ts_status
attention_check (const ts_attention_args *a, ts_error *err)
{
  int64_t sizes[13], width;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "attention: args is NULL");
  sizes[0] = a->batch, sizes[1] = a->heads, sizes[2] = a->seq_q, sizes[3] = a->seq_kv;
  sizes[4] = a->d_head, sizes[5] = a->ldq, sizes[6] = a->ldk, sizes[7] = a->ldv;
  sizes[8] = a->ldo, sizes[9] = a->bs_q, sizes[10] = a->bs_k, sizes[11] = a->bs_v;
  sizes[12] = a->bs_o;
  if ((st = ts_cpu_check_sizes ("attention",
                                "batch,heads,seq_q,seq_kv,d_head,ldq,ldk,ldv,ldo,bs_q,bs_k,bs_v,"
                                "bs_o",
                                sizes, 13, err))
      != TS_OK)
    return st;
  if (__builtin_mul_overflow (a->heads, a->d_head, &width))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "attention: heads * d_head overflows");
  if (a->seq_kv == 0 && a->seq_q > 0 && width > 0 && a->batch > 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "attention: seq_kv is 0 (nothing to attend)");
  if ((st = ts_cpu_check_batched ("attention", "q", a->q, a->batch, a->bs_q, a->seq_q, width,
                                  a->ldq, err))
          != TS_OK
      || (st = ts_cpu_check_batched ("attention", "k", a->k, a->batch, a->bs_k, a->seq_kv,
                                     width, a->ldk, err))
             != TS_OK
      || (st = ts_cpu_check_batched ("attention", "v", a->v, a->batch, a->bs_v, a->seq_kv,
                                     width, a->ldv, err))
             != TS_OK
      || (st = ts_cpu_check_batched ("attention", "out", a->out, a->batch, a->bs_o, a->seq_q,
                                     width, a->ldo, err))
             != TS_OK)
    return st;
  return TS_OK;
}

static ts_status
attention_ref (const ts_attention_args *a, ts_error *err)
{
  const float *q = ts_cpu_f32 (a->q), *k = ts_cpu_f32 (a->k), *v = ts_cpu_f32 (a->v);
  float *out = ts_cpu_f32 (a->out);
  int64_t d = a->d_head;
  float *p = malloc ((size_t) (a->seq_kv + d) * sizeof (float));
  float *acc;

  if (!p)
    return ts_error_set (err, TS_ERR_NOMEM, "attention: cannot allocate %lld bytes of scratch",
                         (long long) (a->seq_kv + d) * 4);
  acc = p + a->seq_kv;
  for (int64_t b = 0; b < a->batch; b++) {
    for (int64_t h = 0; h < a->heads; h++) {
      for (int64_t i = 0; i < a->seq_q; i++) {
        const float *qi = q + b * a->bs_q + i * a->ldq + h * d;
        int64_t n_kv = a->causal && i + 1 < a->seq_kv ? i + 1 : a->seq_kv;
        float max = -INFINITY, sum = 0.0f;

        for (int64_t j = 0; j < n_kv; j++) {
          const float *kj = k + b * a->bs_k + j * a->ldk + h * d;
          float dot = 0.0f;
          for (int64_t c = 0; c < d; c++)
            dot += qi[c] * kj[c];
          p[j] = dot * a->scale;
          max = p[j] > max ? p[j] : max;
        }
        for (int64_t j = 0; j < n_kv; j++) {
          p[j] = expf (p[j] - max);
          sum += p[j];
        }
        for (int64_t c = 0; c < d; c++)
          acc[c] = 0.0f;
        for (int64_t j = 0; j < n_kv; j++) {
          const float *vj = v + b * a->bs_v + j * a->ldv + h * d;
          float pj = p[j] / sum;
          for (int64_t c = 0; c < d; c++)
            acc[c] += pj * vj[c];
        }
        for (int64_t c = 0; c < d; c++)
          out[b * a->bs_o + i * a->ldo + h * d + c] = acc[c];
      }
    }
  }
  free (p);
  return TS_OK;
}

ts_status
ts_cpu_attention (void *impl, const ts_attention_args *a, ts_error *err)
{
  ts_status st = attention_check (a, err);

  (void) impl;
  if (st != TS_OK)
    return st;
  return attention_ref (a, err);
}
