// SPDX-License-Identifier: MIT
//
// matmul.comp — y = (accumulate ? y : 0) + x w^T + bias, f32 accumulation; the twin of
// engine/backend/cpu/ts-cpu-matmul.c. Compiled twice: as is (weights in f32) and with TS_W16
// defined (matmul_w16: weights kept in 16 bits, specialization constant 5 picks f16 or
// bf16; bf16 is read as uint16 and widened by a shift, which is exact). The bias is f32.
//
// Specialization constant 4 (MODE) picks one of four kernels, each for one weight layout
// and one kind of device (engine/backend/vk/ts-vk-ops.c chooses):
//
//  0 BLOCKED (weight in nn.Linear's [n, k] layout): each invocation computes a TM x TN tile
//    of y straight from the storage buffers; the invocations of a workgroup share their
//    rows of x and take consecutive column tiles. Specialization constant 3 (VEC4) selects
//    vec4 loads along k (the host sets it when k, ldx and the offsets are multiples of 4).
//    The general fallback, and the GPU kernel for a handful of rows (AdaLN, timestep).
//  1 ROWS (weight stored transposed, [k, n], on CPU-type devices): the fast form on
//    lavapipe, which runs the invocations of a workgroup as SIMD lanes and turns a load
//    whose address is the same for every lane into one scalar load, but a load with a
//    per-lane address into one load per lane. So every lane takes TM rows of its own and
//    all lanes of a workgroup share one block of TN columns: the TN weight loads per k are
//    uniform, only the TM loads of x are per lane (vec4 along k with VEC4), and each of
//    them feeds TN multiply-adds. Lane l of each subgroup loads 4 of the TN = 4 x subgroup
//    size columns and subgroupBroadcast (a register shuffle there) shares them, so a
//    weight element costs one load per subgroup, not one per lane (n is a multiple of 4
//    for weights stored [k, n]). About 2x the earlier 8 x 16
//    register-blocked kernel, at long k too (docs/benchmarks.md).
//  3 COLS (weight [k, n], m <= 16 on CPU-type devices): ROWS would leave most lanes on
//    clamped rows, so here lanes take 4 columns each and share TM rows (AdaLN, timestep
//    embedding: m = 2).
//  2 TILED (weight [n, k]): the classic shared-memory kernel for real GPUs: 64 x 64 tiles
//    of y per workgroup of 256 invocations (WG must be 256), k in steps of 16 staged
//    through shared memory, 4 x 4 outputs per invocation strided by 16 so that
//    neighbouring invocations touch neighbouring words. 5x slower than ROWS on lavapipe
//    (ENVIRONMENT.md), where it is only run by the tests (TESSERA_VK_GEMM=tiled).
//
// Edge tiles clamp their loads (or zero-fill them in TILED) and skip their stores.
// Push constants: ts_vk_matmul_push.
#version 450
#include "common.glsl"
#extension GL_KHR_shader_subgroup_ballot : enable
#ifdef TS_W16
#extension GL_EXT_shader_16bit_storage : require
#endif

layout(constant_id = 1) const uint TM = 4;
layout(constant_id = 2) const uint TN = 4;
layout(constant_id = 3) const uint VEC4 = 0;
layout(constant_id = 4) const uint MODE = 0;
layout(constant_id = 5) const uint BF16 = 0; // matmul_w16 only: 0 = f16, 1 = bf16
layout(constant_id = 6) const uint VEC4_Y = 0; // ROWS: vec4 stores (ldy, y_off, b_off % 4 == 0)

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
#ifdef TS_W16
layout(std430, binding = 1) readonly buffer W { float16_t w[]; };
layout(std430, binding = 1) readonly buffer W4 { f16vec4 w4[]; };
layout(std430, binding = 1) readonly buffer WB { uint16_t wb[]; };
layout(std430, binding = 1) readonly buffer WB4 { u16vec4 wb4[]; };
#else
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 1) readonly buffer W4 { vec4 w4[]; };
#endif
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 2) readonly buffer B4 { vec4 bias4[]; };
layout(std430, binding = 3) buffer Y { float y[]; };
layout(std430, binding = 3) buffer Y4 { vec4 y4[]; };
layout(push_constant) uniform P {
  uint x_off, w_off, b_off, y_off;
  uint m, n, k, ldx, ldy;
  uint has_bias, accumulate;
} p;

float wload (uint i)
{
#ifdef TS_W16
  if (BF16 != 0u)
    return uintBitsToFloat (uint (wb[i]) << 16);
  return float (w[i]);
#else
  return w[i];
#endif
}

vec4 wload4 (uint i4)
{
#ifdef TS_W16
  if (BF16 != 0u)
    return uintBitsToFloat (uvec4 (wb4[i4]) << 16);
  return vec4 (w4[i4]);
#else
  return w4[i4];
#endif
}

void store (uint i, uint j, float v)
{
  if (p.has_bias != 0u)
    v += bias[p.b_off + j];
  uint yi = p.y_off + i * p.ldy + j;
  if (p.accumulate != 0u)
    v += y[yi];
  y[yi] = v;
}

void blocked ()
{
  uint tiles_n = (p.n + TN - 1u) / TN, tiles_m = (p.m + TM - 1u) / TM;
  uint tj = gl_GlobalInvocationID.x;
  if (tj >= tiles_n)
    return;
  uint j0 = tj * TN;
  uint wrow[TN];
  [[unroll]] for (uint c = 0; c < TN; c++)
    wrow[c] = min (j0 + c, p.n - 1u);

  for (uint ti = gl_WorkGroupID.y; ti < tiles_m; ti += gl_NumWorkGroups.y) {
    uint i0 = ti * TM;
    uint xrow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++)
      xrow[r] = min (i0 + r, p.m - 1u);
    float acc[TM][TN];
    [[unroll]] for (uint r = 0; r < TM; r++)
      [[unroll]] for (uint c = 0; c < TN; c++)
        acc[r][c] = 0.0;

    if (VEC4 != 0u) {
      uint k4 = p.k / 4u, xo = p.x_off / 4u, wo = p.w_off / 4u, ld4 = p.ldx / 4u;
      for (uint kk = 0; kk < k4; kk++) {
        vec4 xv[TM], wv[TN];
        [[unroll]] for (uint r = 0; r < TM; r++)
          xv[r] = x4[xo + xrow[r] * ld4 + kk];
        [[unroll]] for (uint c = 0; c < TN; c++)
          wv[c] = wload4 (wo + wrow[c] * k4 + kk);
        [[unroll]] for (uint r = 0; r < TM; r++)
          [[unroll]] for (uint c = 0; c < TN; c++)
            acc[r][c] += dot (xv[r], wv[c]);
      }
    } else {
      for (uint kk = 0; kk < p.k; kk++) {
        float xv[TM], wv[TN];
        [[unroll]] for (uint r = 0; r < TM; r++)
          xv[r] = x[p.x_off + xrow[r] * p.ldx + kk];
        [[unroll]] for (uint c = 0; c < TN; c++)
          wv[c] = wload (p.w_off + wrow[c] * p.k + kk);
        [[unroll]] for (uint r = 0; r < TM; r++)
          [[unroll]] for (uint c = 0; c < TN; c++)
            acc[r][c] += xv[r] * wv[c];
      }
    }

    [[unroll]] for (uint r = 0; r < TM; r++) {
      if (i0 + r >= p.m)
        break;
      [[unroll]] for (uint c = 0; c < TN; c++) {
        if (j0 + c >= p.n)
          break;
        store (i0 + r, j0 + c, acc[r][c]);
      }
    }
  }
}

void rows ()
{
  // The column block is the workgroup's (uniform); rows are per lane. Lane l of each
  // subgroup loads columns 4l..4l+3 of the block (n is a multiple of 4) and
  // subgroupBroadcast hands them to the other lanes: one load per lane instead of one per
  // lane and column.
  const uint TN4 = TN / 4u;
  uint j0 = gl_WorkGroupID.x * TN, n4 = p.n / 4u;
  uint wcol4 = p.w_off / 4u + min (j0 / 4u + gl_SubgroupInvocationID, n4 - 1u);
  uint blocks_m = (p.m + WG * TM - 1u) / (WG * TM);

  for (uint bi = gl_WorkGroupID.y; bi < blocks_m; bi += gl_NumWorkGroups.y) {
    uint i0 = (bi * WG + gl_LocalInvocationID.x) * TM;
    uint xrow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++)
      xrow[r] = min (i0 + r, p.m - 1u);
    vec4 acc[TM][TN4];
    [[unroll]] for (uint r = 0; r < TM; r++)
      [[unroll]] for (uint c = 0; c < TN4; c++)
        acc[r][c] = vec4 (0.0);

    if (VEC4 != 0u) {
      uint k4 = p.k / 4u, xo = p.x_off / 4u, ld4 = p.ldx / 4u;
      for (uint kk = 0; kk < k4; kk++) {
        vec4 xv[TM];
        [[unroll]] for (uint r = 0; r < TM; r++)
          xv[r] = x4[xo + xrow[r] * ld4 + kk];
        [[unroll]] for (uint s = 0; s < 4u; s++) {
          vec4 mine = wload4 ((4u * kk + s) * n4 + wcol4);
          [[unroll]] for (uint c = 0; c < TN4; c++) {
            vec4 wv = subgroupBroadcast (mine, c);
            [[unroll]] for (uint r = 0; r < TM; r++)
              acc[r][c] += xv[r][s] * wv;
          }
        }
      }
    } else {
      for (uint kk = 0; kk < p.k; kk++) {
        float xv[TM];
        [[unroll]] for (uint r = 0; r < TM; r++)
          xv[r] = x[p.x_off + xrow[r] * p.ldx + kk];
        vec4 mine = wload4 (kk * n4 + wcol4);
        [[unroll]] for (uint c = 0; c < TN4; c++) {
          vec4 wv = subgroupBroadcast (mine, c);
          [[unroll]] for (uint r = 0; r < TM; r++)
            acc[r][c] += xv[r] * wv;
        }
      }
    }

    if (VEC4_Y == 0u) {
      [[unroll]] for (uint r = 0; r < TM; r++) {
        if (i0 + r >= p.m)
          break;
        [[unroll]] for (uint c = 0; c < TN; c++) {
          if (j0 + c >= p.n)
            break;
          store (i0 + r, j0 + c, acc[r][c / 4u][c % 4u]);
        }
      }
      continue;
    }
    // vec4 stores: a quarter of the memory operations, each of which lavapipe expands per
    // lane, so also a quarter of the code LLVM compiles (16 rows per lane with scalar
    // stores take ~25 s to compile there).
    vec4 bv[TN4];
    [[unroll]] for (uint c = 0; c < TN4; c++)
      bv[c] = p.has_bias != 0u ? bias4[p.b_off / 4u + min (j0 / 4u + c, n4 - 1u)] : vec4 (0.0);
    [[unroll]] for (uint r = 0; r < TM; r++) {
      if (i0 + r >= p.m)
        break;
      uint yr = (p.y_off + (i0 + r) * p.ldy) / 4u + j0 / 4u;
      [[unroll]] for (uint c = 0; c < TN4; c++) {
        if (j0 / 4u + c >= n4)
          break;
        vec4 v = acc[r][c] + bv[c];
        if (p.accumulate != 0u)
          v += y4[yr + c];
        y4[yr + c] = v;
      }
    }
  }
}

// COLS: weight [k, n], a few rows: each invocation takes 4 columns (one vec4 load of the
// weight per k, contiguous across lanes) and TM rows shared by the workgroup.
void cols ()
{
  uint n4 = p.n / 4u, c4 = gl_GlobalInvocationID.x, tiles_m = (p.m + TM - 1u) / TM;
  if (c4 >= n4)
    return;
  for (uint ti = gl_WorkGroupID.y; ti < tiles_m; ti += gl_NumWorkGroups.y) {
    uint i0 = ti * TM;
    uint xrow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++)
      xrow[r] = p.x_off + min (i0 + r, p.m - 1u) * p.ldx;
    vec4 acc[TM];
    [[unroll]] for (uint r = 0; r < TM; r++)
      acc[r] = vec4 (0.0);
    for (uint kk = 0; kk < p.k; kk++) {
      vec4 wv = wload4 (p.w_off / 4u + kk * n4 + c4);
      [[unroll]] for (uint r = 0; r < TM; r++)
        acc[r] += x[xrow[r] + kk] * wv;
    }
    [[unroll]] for (uint r = 0; r < TM; r++) {
      if (i0 + r >= p.m)
        break;
      [[unroll]] for (uint e = 0; e < 4u; e++)
        store (i0 + r, 4u * c4 + e, acc[r][e]);
    }
  }
}

// TILED: 64 x 64 outputs, k steps of 16, 256 invocations.
const uint T_B = 64u, T_K = 16u;
shared float t_x[T_K * T_B];
shared float t_w[T_K * T_B];

void tiled ()
{
  uint lid = gl_LocalInvocationID.x, tx = lid % 16u, ty = lid / 16u;
  uint j0 = gl_WorkGroupID.x * T_B;
  uint blocks_m = (p.m + T_B - 1u) / T_B;

  for (uint bi = gl_WorkGroupID.y; bi < blocks_m; bi += gl_NumWorkGroups.y) {
    uint i0 = bi * T_B;
    float acc[4][4];
    [[unroll]] for (uint r = 0; r < 4u; r++)
      [[unroll]] for (uint c = 0; c < 4u; c++)
        acc[r][c] = 0.0;
    for (uint k0 = 0; k0 < p.k; k0 += T_K) {
      // 1024 elements of each tile, 4 per invocation; consecutive invocations read
      // consecutive k (contiguous in both x and the [n, k] weight).
      [[unroll]] for (uint t = 0; t < 4u; t++) {
        uint e = lid + 256u * t, row = e / T_K, kc = e % T_K, kk = k0 + kc;
        uint i = i0 + row, j = j0 + row;
        t_x[kc * T_B + row] = i < p.m && kk < p.k ? x[p.x_off + i * p.ldx + kk] : 0.0;
        t_w[kc * T_B + row] = j < p.n && kk < p.k ? wload (p.w_off + j * p.k + kk) : 0.0;
      }
      barrier ();
      [[unroll]] for (uint kc = 0; kc < T_K; kc++) {
        float a[4], b[4];
        [[unroll]] for (uint r = 0; r < 4u; r++)
          a[r] = t_x[kc * T_B + ty + 16u * r];
        [[unroll]] for (uint c = 0; c < 4u; c++)
          b[c] = t_w[kc * T_B + tx + 16u * c];
        [[unroll]] for (uint r = 0; r < 4u; r++)
          [[unroll]] for (uint c = 0; c < 4u; c++)
            acc[r][c] += a[r] * b[c];
      }
      barrier ();
    }
    [[unroll]] for (uint r = 0; r < 4u; r++)
      [[unroll]] for (uint c = 0; c < 4u; c++) {
        uint i = i0 + ty + 16u * r, j = j0 + tx + 16u * c;
        if (i < p.m && j < p.n)
          store (i, j, acc[r][c]);
      }
  }
}

void main ()
{
  if (MODE == 1u)
    rows ();
  else if (MODE == 2u)
    tiled ();
  else if (MODE == 3u)
    cols ();
  else
    blocked ();
}
