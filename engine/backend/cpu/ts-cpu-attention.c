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
 *
 * Precision bf16 (docs/precision.md): both products take bf16 operands, q and k for the
 * scores, the softmax weights p and v for the output, each product exact in f32 and summed
 * in f32; the scores, their scale, the mask and the softmax stay f32. The reference rounds
 * the operands where it uses them; the fast path goes through oneDNN (ts-cpu-dnnl.c), as
 * does fp32 on AVX-512 CPUs for sequences of at least DNNL_F32_MIN_Q queries: k and v of
 * one (batch, head) are copied once (to bf16 in precision bf16), then blocks of queries
 * whose scores fill at most ATTN_DNNL_SCORES floats run as two matmuls with the softmax
 * between them (one pass over each row that scales, exponentiates, normalises and, in
 * bf16, writes the weights as bf16), oneDNN spreading each product over the threads. The
 * second product runs over the whole key range, the masked keys' weights being exact
 * zeros.
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
/* oneDNN path: scores per query block, in floats (16 MB; Meissonic's 1101 tokens at
 * 1024² take one block per head, 4.8 MB). */
#define ATTN_DNNL_SCORES (1 << 22)
/* fp32 through oneDNN, with AVX-512, from this many queries (bench-cpu-kernels, Zen 5:
 * 40 ms against the sgemm blocks' 57 ms at Meissonic's 1101 tokens; CLIP's 77 stay on
 * OpenBLAS; not measured on AVX2, which keeps the sgemm blocks). */
#define DNNL_F32_MIN_Q 256

static bool
attention_bf16 (const ts_cpu *cpu)
{
  return cpu->precision == TS_PRECISION_BF16;
}

static ts_status
attention_ref (ts_cpu *cpu, const ts_attention_args *a, ts_error *err)
{
  const float *q = ts_cpu_f32 (a->q), *k = ts_cpu_f32 (a->k), *v = ts_cpu_f32 (a->v);
  float *out = ts_cpu_f32 (a->out);
  int64_t d = a->d_head;
  bool bf16 = attention_bf16 (cpu);
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
            dot += bf16 ? ts_cpu_round_bf16 (qi[c]) * ts_cpu_round_bf16 (kj[c]) : qi[c] * kj[c];
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
          float pj = bf16 ? ts_cpu_round_bf16 (p[j] / sum) : p[j] / sum;
          for (int64_t c = 0; c < d; c++)
            acc[c] += pj * (bf16 ? ts_cpu_round_bf16 (vj[c]) : vj[c]);
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

/* The oneDNN path: k and v of one head copied once (bf16 or f32), as the weights of
 * y = x w^T: k as [n, d], v transposed to [d, n]. */
typedef struct {
  const float *src;
  int64_t ld, n, d;
  void *dst;
  bool bf16;
} kv_copy_job;

static inline void
kv_store (const kv_copy_job *job, int64_t i, float f)
{
  if (job->bf16)
    ((uint16_t *) job->dst)[i] = ts_cpu_f32_to_bf16 (f);
  else
    ((float *) job->dst)[i] = f;
}

static void
copy_k_task (void *data, int64_t begin, int64_t end, int thread)
{
  const kv_copy_job *job = data;

  (void) thread;
  for (int64_t j = begin; j < end; j++)
    for (int64_t c = 0; c < job->d; c++)
      kv_store (job, j * job->d + c, job->src[j * job->ld + c]);
}

/* Tasks are blocks of 64 rows of v. */
static void
copy_vt_task (void *data, int64_t begin, int64_t end, int thread)
{
  const kv_copy_job *job = data;
  int64_t j1 = end * 64 < job->n ? end * 64 : job->n;

  (void) thread;
  for (int64_t c = 0; c < job->d; c++)
    for (int64_t j = begin * 64; j < j1; j++)
      kv_store (job, c * job->n + j, job->src[j * job->ld + c]);
}

typedef struct {
  float *s;
  uint16_t *p; /* bf16: the weights go here; NULL: they replace the scores */
  int64_t n_kv, q0;
  float scale;
  bool causal;
} dnnl_softmax_job;

/* Rows of scores s to softmax(scale s), masked keys getting weight 0. */
static void
dnnl_softmax_task (void *data, int64_t begin, int64_t end, int thread)
{
  const dnnl_softmax_job *job = data;

  (void) thread;
  for (int64_t i = begin; i < end; i++) {
    float *row = job->s + i * job->n_kv, max = -INFINITY, min = INFINITY, inv;
    int64_t n_keep = job->causal && job->q0 + i + 1 < job->n_kv ? job->q0 + i + 1 : job->n_kv;

    for (int64_t j = 0; j < n_keep; j++) {
      max = row[j] > max ? row[j] : max;
      min = row[j] < min ? row[j] : min;
    }
    /* the largest scaled score: scale * max, or scale * min for a negative scale */
    inv = 1.0f / ts_cpu_exp_scale_sub_sum (row, n_keep, job->scale,
                                           job->scale * (job->scale >= 0.0f ? max : min));
    if (job->p) {
      uint16_t *p = job->p + i * job->n_kv;
      ts_cpu_bf16_row (row, p, n_keep, inv);
      for (int64_t j = n_keep; j < job->n_kv; j++)
        p[j] = 0; /* +0.0 in bf16 */
    } else {
      for (int64_t j = 0; j < n_keep; j++)
        row[j] *= inv;
      for (int64_t j = n_keep; j < job->n_kv; j++)
        row[j] = 0.0f;
    }
  }
}

static ts_status
attention_dnnl (ts_cpu *cpu, const ts_attention_args *a, bool bf16, ts_error *err)
{
  int64_t d = a->d_head, n_kv = a->seq_kv;
  int64_t rows = ATTN_DNNL_SCORES / n_kv;
  size_t esize = bf16 ? 2 : 4;
  ts_dtype dtype = bf16 ? TS_DTYPE_BF16 : TS_DTYPE_F32;
  size_t part[4], off[5] = { 0 };
  char *kw, *vt;
  float *scores;
  uint16_t *pb;
  ts_status st = TS_OK;

  rows = rows < 1 ? 1 : rows > a->seq_q ? a->seq_q : rows;
  /* scores, K, V^T and the bf16 weights in one buffer kept by the backend, each part
   * starting on a 64-byte line */
  part[0] = (size_t) (rows * n_kv) * sizeof (float);
  part[1] = part[2] = (size_t) (n_kv * d) * esize;
  part[3] = bf16 ? (size_t) (rows * n_kv) * 2 : 0;
  for (int i = 0; i < 4; i++)
    off[i + 1] = off[i] + ((part[i] + 63) & ~(size_t) 63);
  if (cpu->attn_bytes < off[4]) {
    void *p = aligned_alloc (64, off[4]);
    if (!p)
      return ts_error_set (err, TS_ERR_NOMEM, "attention: cannot allocate %zu bytes of scratch",
                           off[4]);
    free (cpu->attn);
    cpu->attn = p;
    cpu->attn_bytes = off[4];
  }
  scores = (float *) cpu->attn;
  kw = (char *) cpu->attn + off[1];
  vt = (char *) cpu->attn + off[2];
  pb = bf16 ? (uint16_t *) (void *) ((char *) cpu->attn + off[3]) : NULL;
  for (int64_t bh = 0; bh < a->batch * a->heads && st == TS_OK; bh++) {
    int64_t b = bh / a->heads, h = bh % a->heads;
    kv_copy_job kj = { ts_cpu_f32 (a->k) + b * a->bs_k + h * d, a->ldk, n_kv, d, kw, bf16 };
    kv_copy_job vj = { ts_cpu_f32 (a->v) + b * a->bs_v + h * d, a->ldv, n_kv, d, vt, bf16 };

    ts_cpu_parallel_for (cpu, n_kv, 64, copy_k_task, &kj);
    ts_cpu_parallel_for (cpu, (n_kv + 63) / 64, 1, copy_vt_task, &vj);
    for (int64_t q0 = 0; q0 < a->seq_q && st == TS_OK; q0 += rows) {
      int64_t nq = q0 + rows <= a->seq_q ? rows : a->seq_q - q0;
      const float *q = ts_cpu_f32 (a->q) + b * a->bs_q + q0 * a->ldq + h * d;
      float *out = ts_cpu_f32 (a->out) + b * a->bs_o + q0 * a->ldo + h * d;
      dnnl_softmax_job sj = { scores, pb, n_kv, q0, a->scale, a->causal };

      if (ts_cpu_should_stop (cpu, 0))
        break; /* the op wrapper reports the cancel */
      if ((st = ts_cpu_dnnl_matmul (cpu, dtype, q, a->ldq, kw, NULL, sj.s, n_kv, nq, n_kv, d,
                                    false, err))
          != TS_OK)
        break;
      ts_cpu_parallel_for (cpu, nq, 16, dnnl_softmax_task, &sj);
      if (bf16)
        st = ts_cpu_dnnl_matmul_bf16 (cpu, pb, n_kv, (const uint16_t *) (void *) vt, out,
                                      a->ldo, nq, d, n_kv, err);
      else
        st = ts_cpu_dnnl_matmul (cpu, TS_DTYPE_F32, sj.s, n_kv, vt, NULL, out, a->ldo, nq, d,
                                 n_kv, false, err);
    }
  }
  return st;
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
  if (attention_bf16 (cpu) || (cpu->dnnl_f32_wide && a->seq_q >= DNNL_F32_MIN_Q))
    return attention_dnnl (cpu, a, attention_bf16 (cpu), err);

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
