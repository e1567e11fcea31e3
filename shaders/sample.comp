// SPDX-License-Identifier: MIT
//
// sample.comp — the per-token part of the MaskGIT sampler step (ts_sample_args), the twin
// of engine/backend/ts-sample-math.c (ts_sampler_sample_tokens): softmax over the codebook,
// the draw of every masked token, and the confidence the host's re-masking compares.
// Push constants: ts_vk_sample_push.
//
// The logits are channel-major ([codebook][tokens], the transformer's NCHW output), so a
// workgroup takes TOK = WG / LANES neighbouring tokens and LANES code lanes each:
// invocation i serves token i % TOK and lane i / TOK, and consecutive invocations read
// consecutive tokens of one codebook row (coalesced). Lane j owns the contiguous codes
// [j * chunk, (j + 1) * chunk). Per token: the max over the lanes' maxima; each lane's
// sum of exp (l - max) in code order; their running sums P_j in lane order (one
// invocation, sequentially), total = P_LANES. The inverse-CDF draw with the Philox
// uniform u finds the lane with P_j <= u * total < P_(j+1) and scans its codes for the
// first c with P_j + (its running sum up to c) > u * total. That value is P_(j+1) at the
// lane's last code, so some code always crosses (u * total < total for u < 1, as on the
// CPU). The CPU sums in another order (torch's lanes for the denominator, one sequential
// CDF sum), so probabilities differ in the last bits and a draw within rounding of a CDF
// step may pick the neighbouring code.
//
// With guidance the unconditional row is bound at 0 and the conditional one at 6, so that
// neither binding spans more than one image's logits.
//
// A token whose logits are not finite, or whose recorded draw is outside the codebook,
// gets code -1: ts_sampler_remask turns that into the error the CPU reports.
#version 450
#include "common.glsl"
#include "philox.glsl"

layout(constant_id = 1) const uint LANES = 8;
const uint TOK = WG / LANES;

layout(std430, binding = 0) readonly buffer L { float logits[]; };
layout(std430, binding = 1) readonly buffer S { int sample_ids[]; };
layout(std430, binding = 2) readonly buffer DC { int draw_codes[]; };
layout(std430, binding = 3) readonly buffer DG { float draw_gumbel[]; };
layout(std430, binding = 4) writeonly buffer C { int codes[]; };
layout(std430, binding = 5) writeonly buffer F { float confidence[]; };
layout(std430, binding = 6) readonly buffer LC { float logits_cond[]; };
layout(push_constant) uniform P {
  uint l_off, s_off, dc_off, dg_off, c_off, f_off, lc_off;
  uint codebook, n_tokens, n_rows, mask_id, noise, recorded;
  uint seed_lo, seed_hi, image, step;
  float guidance, temperature;
} p;

shared float sh_part[WG];   // per invocation: its lane's max, then its lane's sum
shared float sh_prefix[WG]; // P_j of each lane
shared float sh_total[TOK];
shared int sh_code[TOK];

// The logit of code c for token t: with two rows uncond + g * (cond - uncond), rounded
// after each operation as ts_sampler_cfg_combine.
float logit (uint c, uint t)
{
  uint i = c * p.n_tokens + t;
  float u = logits[p.l_off + i];
  if (p.n_rows == 1u)
    return u;
  precise float d = logits_cond[p.lc_off + i] - u;
  precise float s = p.guidance * d;
  precise float g = u + s;
  return g;
}

float gumbel (float u)
{
  float inner = -log (max (u, 1e-20));
  return -log (max (inner, 1e-20));
}

void main ()
{
  uint lid = gl_LocalInvocationID.x;
  uint slot = lid % TOK, lane = lid / TOK;
  uint chunk = (p.codebook + LANES - 1u) / LANES;
  uint c0 = min (lane * chunk, p.codebook), c1 = min (c0 + chunk, p.codebook);
  uvec2 key = uvec2 (p.seed_lo, p.seed_hi);

  for (uint base = gl_WorkGroupID.x * TOK; base < p.n_tokens; base += gl_NumWorkGroups.x * TOK) {
    uint t = base + slot;
    bool live = t < p.n_tokens;
    int given = live ? sample_ids[p.s_off + t] : 0;
    bool unknown = live && given == int (p.mask_id);

    float m = -1.0 / 0.0;
    if (live)
      for (uint c = c0; c < c1; c++)
        m = max (m, logit (c, t));
    sh_part[lid] = m;
    barrier ();
    m = sh_part[slot];
    for (uint j = 1u; j < LANES; j++)
      m = max (m, sh_part[j * TOK + slot]);
    barrier ();

    float s = 0.0;
    if (live)
      for (uint c = c0; c < c1; c++)
        s += exp (logit (c, t) - m);
    sh_part[lid] = s;
    barrier ();
    if (lane == 0u) {
      float run = 0.0;
      for (uint j = 0u; j < LANES; j++) {
        sh_prefix[j * TOK + slot] = run;
        run += sh_part[j * TOK + slot];
      }
      sh_total[slot] = run;
      sh_code[slot] = given;
    }
    barrier ();
    float total = sh_total[slot];
    bool finite = !isinf (m) && !isnan (m) && !isinf (total) && !isnan (total);

    if (unknown && finite && p.recorded == 0u) {
      float thr = ts_rng_uniform (key, p.image, p.step, TS_RNG_PURPOSE_MULTINOMIAL, t) * total;
      float lo = sh_prefix[lid];
      float hi = lane + 1u < LANES ? sh_prefix[lid + TOK] : total;
      if (lo <= thr && thr < hi) {
        int code = int (c1) - 1;
        float run = 0.0;
        for (uint c = c0; c < c1; c++) {
          run += exp (logit (c, t) - m);
          if (lo + run > thr) {
            code = int (c);
            break;
          }
        }
        sh_code[slot] = code;
      }
    }
    barrier ();

    if (live && lane == 0u) {
      int code = sh_code[slot];
      float prob = 3.40282347e38; // finfo(float32).max at known tokens
      if (unknown && p.recorded != 0u) {
        code = draw_codes[p.dc_off + t];
        if (code < 0 || code >= int (p.codebook))
          code = -1;
      }
      if (!finite)
        code = -1;
      if (unknown && code >= 0) {
        float inv_sum = 1.0 / total;
        prob = exp (logit (uint (code), t) - m) * inv_sum;
      }
      precise float conf = log (max (prob, 1e-20));
      if (p.noise != 0u) {
        float g = p.recorded != 0u ? draw_gumbel[p.dg_off + t]
                                   : gumbel (ts_rng_uniform (key, p.image, p.step,
                                                             TS_RNG_PURPOSE_GUMBEL, t));
        precise float noise = p.temperature * g;
        conf = conf + noise;
      }
      codes[p.c_off + t] = code;
      confidence[p.f_off + t] = conf;
    }
    barrier ();
  }
}
