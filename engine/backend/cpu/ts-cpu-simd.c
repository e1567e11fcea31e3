/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-simd — the fast path's transcendental loops: exp for the softmax (and so for
 * attention), and the sigmoid-shaped activations SiLU and tanh-GELU, which together cost
 * as much as a tenth of a Meissonic step when done one libm call at a time.
 *
 * The engine is built for the baseline x86-64 ISA, so these loops are compiled a second
 * time for AVX2 (GCC/Clang target attributes and vector extensions, 8 floats at a time)
 * and picked at run time when the CPU has it; elsewhere the libm loop runs. The vector
 * exp is Cephes' expf: Cody-Waite reduction by ln 2, a degree-6 polynomial, and the power
 * of two applied in two halves so that results from FLT_MAX down to the subnormals are
 * right; measured within 1.4 ulp of exp() over [-87, 88.7], exact for 0, +-inf and NaN.
 * tanh-GELU uses the identity 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), which avoids
 * the cancellation of 1 + tanh(u) for negative x.
 */
#include "backend/cpu/ts-cpu.h"

#include <math.h>
#include <stdatomic.h>

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define TS_CPU_HAVE_AVX2_PATH 1
#define AVX2 __attribute__ ((target ("avx2")))

#include <cpuid.h>
#include <immintrin.h>

typedef float v8f __attribute__ ((vector_size (32)));
typedef int32_t v8i __attribute__ ((vector_size (32)));

AVX2 static inline v8f
v8_select (v8i mask, v8f a, v8f b)
{
  return (v8f) ((mask & (v8i) a) | (~mask & (v8i) b));
}

AVX2 static inline v8f
v8_exp (v8f x)
{
  const v8f zero = { 0 };
  v8i nan = x != x;
  v8f c, n, r, p;
  v8i ni, n1, n2;

  c = v8_select (x < -104.0f, zero - 104.0f, x);
  c = v8_select (x > 88.7228394f, zero + 88.7228394f, c);
  c = v8_select (nan, zero, c);
  n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
  r = (c - n * 0.693359375f) + n * 2.12194440e-4f;
  p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
         + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * (r * r)
      + r + 1.0f;
  ni = __builtin_convertvector (n, v8i);
  n1 = ni >> 1;
  n2 = ni - n1;
  p = p * (v8f) ((n1 + 127) << 23) * (v8f) ((n2 + 127) << 23);
  p = v8_select (x < -103.972077f, zero, p);
  p = v8_select (x > 88.7228394f, zero + INFINITY, p);
  return v8_select (nan, x, p);
}

/* kind 0: x / (1 + exp(-x)); kind 1: x / (1 + exp(-2 k (x + 0.044715 x^3))) */
AVX2 static inline v8f
v8_sigmoid_mul (v8f x, int kind)
{
  v8f t = kind == 0 ? -x : -2.0f * (GELU_K * (x + 0.044715f * (x * x * x)));
  return x / (1.0f + v8_exp (t));
}

AVX2 static float
exp_sub_sum_avx2 (float *x, int64_t n, float scale, float shift)
{
  v8f acc = { 0 }, v;
  float tail[8] = { 0 }, sum = 0.0f;
  int64_t i = 0, rest;

  for (; i + 8 <= n; i += 8) {
    memcpy (&v, x + i, sizeof v);
    v = v8_exp (v * scale - shift);
    acc += v;
    memcpy (x + i, &v, sizeof v);
  }
  rest = n - i;
  if (rest > 0) {
    memcpy (tail, x + i, (size_t) rest * sizeof (float));
    memcpy (&v, tail, sizeof v);
    v = v8_exp (v * scale - shift);
    memcpy (tail, &v, sizeof v);
    memcpy (x + i, tail, (size_t) rest * sizeof (float));
    for (int64_t l = 0; l < rest; l++)
      sum += tail[l];
  }
  for (int l = 0; l < 8; l++)
    sum += acc[l];
  return sum;
}

AVX2 static void
sigmoid_mul_avx2 (const float *x, float *y, int64_t n, int kind)
{
  float tail[8] = { 0 };
  int64_t i = 0, rest;
  v8f v;

  for (; i + 8 <= n; i += 8) {
    memcpy (&v, x + i, sizeof v);
    v = v8_sigmoid_mul (v, kind);
    memcpy (y + i, &v, sizeof v);
  }
  rest = n - i;
  if (rest > 0) {
    memcpy (tail, x + i, (size_t) rest * sizeof (float));
    memcpy (&v, tail, sizeof v);
    v = v8_sigmoid_mul (v, kind);
    memcpy (tail, &v, sizeof v);
    memcpy (y + i, tail, (size_t) rest * sizeof (float));
  }
}

static bool
have_avx2 (void)
{
  static atomic_int cached = -1; /* every thread computes the same value */
  int v = atomic_load_explicit (&cached, memory_order_relaxed);

  if (v < 0) {
    __builtin_cpu_init ();
    v = __builtin_cpu_supports ("avx2") ? 1 : 0;
    atomic_store_explicit (&cached, v, memory_order_relaxed);
  }
  return v == 1;
}

/* F16C's vcvtph2ps, 8 halves at a time: exact, like ts_cpu_f16_to_f32 (subnormals, inf and
 * NaN included). */
__attribute__ ((target ("avx,f16c"))) static void
widen_f16_f16c (const uint16_t *src, float *dst, int64_t n)
{
  int64_t i = 0;

  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128 ((const __m128i *) (const void *) (src + i));
    _mm256_storeu_ps (dst + i, _mm256_cvtph_ps (h));
  }
  for (; i < n; i++) {
    uint16_t b;
    memcpy (&b, src + i, sizeof b);
    dst[i] = ts_cpu_f16_to_f32 (b);
  }
}

/* F16C from CPUID (leaf 1, ECX bit 29): Clang's __builtin_cpu_supports has no "f16c". AVX
 * (which F16C's 256-bit form needs, OS support included) from the builtin. */
static bool
have_f16c (void)
{
  static atomic_int cached = -1;
  int v = atomic_load_explicit (&cached, memory_order_relaxed);

  if (v < 0) {
    unsigned a, b, c, d;
    __builtin_cpu_init ();
    v = __builtin_cpu_supports ("avx") && __get_cpuid (1, &a, &b, &c, &d) && (c & bit_F16C)
          ? 1
          : 0;
    atomic_store_explicit (&cached, v, memory_order_relaxed);
  }
  return v == 1;
}
#endif

void
ts_cpu_widen (ts_dtype dtype, const void *src, float *dst, int64_t n)
{
  /* src may be unaligned (a tensor of a safetensors file): every load is a memcpy. */
  const uint16_t *h = src;

  if (dtype == TS_DTYPE_F32) {
    memcpy (dst, src, (size_t) n * sizeof (float));
  } else if (dtype == TS_DTYPE_BF16) {
    for (int64_t i = 0; i < n; i++) { /* a shift: the compiler vectorises it */
      uint16_t b;
      uint32_t bits;
      memcpy (&b, h + i, sizeof b);
      bits = (uint32_t) b << 16;
      memcpy (dst + i, &bits, sizeof bits);
    }
  } else {
#ifdef TS_CPU_HAVE_AVX2_PATH
    if (have_f16c ()) {
      widen_f16_f16c (h, dst, n);
      return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
      uint16_t b;
      memcpy (&b, h + i, sizeof b);
      dst[i] = ts_cpu_f16_to_f32 (b);
    }
  }
}

float
ts_cpu_exp_sub_sum (float *x, int64_t n, float shift)
{
  return ts_cpu_exp_scale_sub_sum (x, n, 1.0f, shift);
}

float
ts_cpu_exp_scale_sub_sum (float *x, int64_t n, float scale, float shift)
{
  float lane[TS_CPU_LANES] = { 0 }, sum = 0.0f;
  int64_t j = 0;

#ifdef TS_CPU_HAVE_AVX2_PATH
  if (have_avx2 ())
    return exp_sub_sum_avx2 (x, n, scale, shift);
#endif
  for (int64_t i = 0; i < n; i++)
    x[i] = expf (x[i] * scale - shift);
  for (; j + TS_CPU_LANES <= n; j += TS_CPU_LANES)
    for (int l = 0; l < TS_CPU_LANES; l++)
      lane[l] += x[j + l];
  for (; j < n; j++)
    sum += x[j];
  for (int l = 0; l < TS_CPU_LANES; l++)
    sum += lane[l];
  return sum;
}

#ifdef TS_CPU_HAVE_AVX2_PATH
/* vcvtneps2bf16 (AVX512_BF16): round to nearest even like ts_cpu_f32_to_bf16, except that
 * it takes subnormal inputs as zero (magnitudes below 1.2e-38) and quiets NaNs. */
__attribute__ ((target ("avx512f,avx512bf16,avx512vl"))) static void
bf16_row_avx512 (const float *x, uint16_t *y, int64_t n, float mul)
{
  __m512 m = _mm512_set1_ps (mul);
  int64_t i = 0;

  for (; i + 16 <= n; i += 16) {
    __m256bh b = _mm512_cvtneps_pbh (_mm512_mul_ps (_mm512_loadu_ps (x + i), m));
    _mm256_storeu_si256 ((__m256i *) (void *) (y + i), (__m256i) b);
  }
  for (; i < n; i++)
    y[i] = ts_cpu_f32_to_bf16 (x[i] * mul);
}

static bool
have_avx512_bf16 (void)
{
  static atomic_int cached = -1;
  int v = atomic_load_explicit (&cached, memory_order_relaxed);

  if (v < 0) {
    __builtin_cpu_init ();
    v = __builtin_cpu_supports ("avx512bf16") && __builtin_cpu_supports ("avx512vl");
    atomic_store_explicit (&cached, v, memory_order_relaxed);
  }
  return v;
}
#endif

void
ts_cpu_bf16_row (const float *x, uint16_t *y, int64_t n, float mul)
{
#ifdef TS_CPU_HAVE_AVX2_PATH
  if (have_avx512_bf16 ()) {
    bf16_row_avx512 (x, y, n, mul);
    return;
  }
#endif
  for (int64_t i = 0; i < n; i++)
    y[i] = ts_cpu_f32_to_bf16 (x[i] * mul);
}

void
ts_cpu_silu (const float *x, float *y, int64_t n)
{
#ifdef TS_CPU_HAVE_AVX2_PATH
  if (have_avx2 ()) {
    sigmoid_mul_avx2 (x, y, n, 0);
    return;
  }
#endif
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] / (1.0f + expf (-x[i]));
}

void
ts_cpu_gelu_tanh (const float *x, float *y, int64_t n)
{
#ifdef TS_CPU_HAVE_AVX2_PATH
  if (have_avx2 ()) {
    sigmoid_mul_avx2 (x, y, n, 1);
    return;
  }
#endif
  for (int64_t i = 0; i < n; i++) {
    float v = x[i], cube = v * v * v;
    y[i] = 0.5f * v * (1.0f + tanhf (GELU_K * (v + 0.044715f * cube)));
  }
}
