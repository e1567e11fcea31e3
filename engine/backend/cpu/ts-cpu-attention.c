/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-attention — scaled dot-product attention for the CLIP text encoder (causal) and
 * the transformer's joint [text ; image] attention, computed as softmax(scale q k^T) v in
 * fp32 like the golden harness's polyfill of F.scaled_dot_product_attention. No seq x seq
 * matrix is ever held: the reference path handles one query row at a time with a seq_kv
 * score vector; the fast path takes blocks of up to ATTN_CHUNK queries of one (batch,
 * head), computes their scores with one sgemm into a per-thread scratch of
 * ATTN_CHUNK x seq_kv floats, applies the causal mask and the softmax row by row, and
 * multiplies by v with a second sgemm straight into `out`. Blocks are spread over the pool.
 */
#include "backend/cpu/ts-cpu.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

/* Queries per block: 64 x seq_kv scores (1.1 MB at Meissonic's 4173 tokens) stay in L2/L3,
 * and the sgemm is still large enough to run near peak. */
#define ATTN_CHUNK 64
/* Scratch cap in floats: long kv sequences get fewer queries per block. */
#define ATTN_SCRATCH_MAX (1 << 20)

static ts_status
attention_ref (ts_cpu *cpu, const ts_attention_args *a, ts_error *err)
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
      for (int64_t i = 0; i < a->seq_q && !ts_cpu_should_stop (cpu, 0); i++) {
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

typedef struct {
  ts_cpu *cpu;
  const ts_attention_args *a;
  int64_t chunk, n_chunks;
} attention_job;

static void
attention_task (void *data, int64_t begin, int64_t end, int thread)
{
  const attention_job *job = data;
  const ts_attention_args *a = job->a;
  float *s = job->cpu->scratch[thread];
  int64_t d = a->d_head;

  for (int64_t t = begin; t < end; t++) {
    int64_t c = t % job->n_chunks, bh = t / job->n_chunks;
    int64_t b = bh / a->heads, h = bh % a->heads;
    int64_t q0 = c * job->chunk;
    int64_t nq = q0 + job->chunk <= a->seq_q ? job->chunk : a->seq_q - q0;
    /* causal: no query of this block sees keys past its last query */
    int64_t n_kv = a->causal && q0 + nq < a->seq_kv ? q0 + nq : a->seq_kv;
    const float *q = ts_cpu_f32 (a->q) + b * a->bs_q + q0 * a->ldq + h * d;
    const float *k = ts_cpu_f32 (a->k) + b * a->bs_k + h * d;
    const float *v = ts_cpu_f32 (a->v) + b * a->bs_v + h * d;
    float *out = ts_cpu_f32 (a->out) + b * a->bs_o + q0 * a->ldo + h * d;

    /* s[nq, n_kv] = scale * q k^T */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) nq, (int) n_kv, (int) d,
                 a->scale, q, (int) a->ldq, k, (int) a->ldk, 0.0f, s, (int) n_kv);
    for (int64_t i = 0; i < nq; i++) {
      float *row = s + i * n_kv;
      if (a->causal)
        for (int64_t j = q0 + i + 1; j < n_kv; j++)
          row[j] = -INFINITY;
      ts_cpu_softmax_row_fast (row, n_kv);
    }
    /* out[nq, d] = s v */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) nq, (int) d, (int) n_kv, 1.0f,
                 s, (int) n_kv, v, (int) a->ldv, 0.0f, out, (int) a->ldo);
  }
}

ts_status
ts_cpu_attention (void *impl, const ts_attention_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  ts_status st;
  attention_job job;

  if (a->batch == 0 || a->heads == 0 || a->seq_q == 0 || a->d_head == 0)
    return TS_OK;
  if (cpu->reference || a->seq_kv > INT_MAX || a->d_head > INT_MAX || a->ldq > INT_MAX
      || a->ldk > INT_MAX || a->ldv > INT_MAX || a->ldo > INT_MAX)
    return attention_ref (cpu, a, err);

  job.cpu = cpu;
  job.a = a;
  job.chunk = ATTN_SCRATCH_MAX / a->seq_kv;
  job.chunk = job.chunk < 1 ? 1 : job.chunk > ATTN_CHUNK ? ATTN_CHUNK : job.chunk;
  job.n_chunks = (a->seq_q + job.chunk - 1) / job.chunk;
  if ((st = ts_cpu_scratch_reserve (cpu, (size_t) (job.chunk * a->seq_kv), "attention", err))
      != TS_OK)
    return st;
  ts_cpu_parallel_for (cpu, a->batch * a->heads * job.n_chunks, 1, attention_task, &job);
  return TS_OK;
}
