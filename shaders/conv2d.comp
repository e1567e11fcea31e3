// SPDX-License-Identifier: MIT
//
// conv2d.comp — 2-D convolution over NCHW with zero padding (possibly asymmetric) and
// stride, and, with specialization constant 1 (TRANSPOSED) set, the non-overlapping
// transposed convolution nn.ConvTranspose2d(k, stride=k) (kh = kw = stride = k,
// h_out = h * k); the twin of engine/backend/cpu/ts-cpu-conv2d.c.
//
// Each invocation computes OC output channels (specialization constant 2) at one output
// pixel, so every input value it loads feeds OC multiply-adds. A workgroup shares one
// tile of output channels (workgroup y) and one batch item (workgroup z), so the weight
// loads are the same for all its invocations, while consecutive invocations take
// consecutive pixels (contiguous loads of x).
//
// Specialization constant 3 (SG, the subgroup size; 0 = off) selects the form for
// CPU-type devices (lavapipe), where every storage-buffer load costs one load per lane:
// each invocation computes PX = 4 neighbouring pixels of a row for OC = 2 x SG channels,
// lane l loads the weights of channels l and l + SG, and subgroupBroadcast shares them,
// so one (c, ky, kx) step costs 4 + 2 loads per lane for 4 x OC multiply-adds (the form
// above: 9 loads for 8). Rows whose width is a multiple of 4 are stored as vec4.
//
// The invocations of a dispatch cover the items g0 <= g < g1 of a plane: output pixels,
// or in the SG form runs of PX pixels (h_out x ceil(w_out / PX) of them, row-major), so
// that a CPU-type device can run one convolution as several dispatches of consecutive
// items (ts_vk_conv2d) and poll for a cancel between them. Which invocation computes an
// item does not change its arithmetic. Push constants: ts_vk_conv2d_push.
#version 450
#include "common.glsl"
#extension GL_KHR_shader_subgroup_ballot : enable

layout(constant_id = 1) const uint TRANSPOSED = 0;
layout(constant_id = 2) const uint OC = 4;
layout(constant_id = 3) const uint SG = 0;
layout(constant_id = 4) const uint VEC4_Y = 0; // SG form: w_out and y_off multiples of 4

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) writeonly buffer Y4 { vec4 y4[]; };
layout(push_constant) uniform P {
  uint x_off, w_off, b_off, y_off;
  uint batch, c_in, h, w_in, c_out, h_out, w_out;
  uint kh, kw, stride, pad_top, pad_left, has_bias;
  uint g0, g1;
} p;

const uint PX = 4u;

void conv_lanes ()
{
  const uint WPL = OC / (SG == 0u ? 1u : SG); // weight loads per lane and step
  uint bi = gl_WorkGroupID.z, o0 = gl_WorkGroupID.y * OC;
  uint lane = gl_SubgroupInvocationID;
  uint ksz = p.kh * p.kw, wstride = p.c_in * ksz;
  uint wrow[WPL];
  [[unroll]] for (uint t = 0; t < WPL; t++)
    wrow[t] = p.w_off + min (o0 + lane + SG * t, p.c_out - 1u) * wstride;
  uint groups_x = (p.w_out + PX - 1u) / PX;
  // Every lane of a subgroup runs the loop the same number of times (subgroupBroadcast
  // needs them all): lanes past the end work on a clamped group and store nothing.
  uint n_iter = (p.g1 - p.g0 + ts_grid_stride () - 1u) / ts_grid_stride ();
  for (uint it = 0; it < n_iter; it++) {
    uint g = p.g0 + gl_GlobalInvocationID.x + it * ts_grid_stride ();
    bool live = g < p.g1;
    g = min (g, p.g1 - 1u);
    uint oy = g / groups_x, ox0 = (g - oy * groups_x) * PX;
    int y0 = int (oy * p.stride) - int (p.pad_top);
    int x0 = int (ox0 * p.stride) - int (p.pad_left);
    uint ky0 = uint (max (-y0, 0)), ky1 = uint (clamp (int (p.h) - y0, 0, int (p.kh)));
    vec4 acc[OC];
    [[unroll]] for (uint t = 0; t < OC; t++)
      acc[t] = vec4 (p.has_bias != 0u ? bias[p.b_off + min (o0 + t, p.c_out - 1u)] : 0.0);
    // ky0..ky1 is the same for every lane with rows in range; a lane whose rows are all
    // padding (ky0 >= ky1) still runs the full loop with zero x so that broadcasts line up
    for (uint c = 0; c < p.c_in; c++) {
      uint xc = p.x_off + (bi * p.c_in + c) * p.h * p.w_in;
      for (uint ky = 0; ky < p.kh; ky++) {
        bool row_ok = ky >= ky0 && ky < ky1;
        uint xr = xc + uint (clamp (y0 + int (ky), 0, int (p.h) - 1)) * p.w_in;
        for (uint kx = 0; kx < p.kw; kx++) {
          vec4 xv;
          [[unroll]] for (uint q = 0; q < PX; q++) {
            int ix = x0 + int (q * p.stride + kx);
            bool ok = row_ok && ix >= 0 && ix < int (p.w_in);
            float v = x[xr + uint (clamp (ix, 0, int (p.w_in) - 1))];
            xv[q] = ok ? v : 0.0;
          }
          uint wk = c * ksz + ky * p.kw + kx;
          [[unroll]] for (uint t = 0; t < WPL; t++) {
            float mine = w[wrow[t] + wk];
            [[unroll]] for (uint l = 0; l < SG; l++)
              acc[l + SG * t] += subgroupBroadcast (mine, l) * xv;
          }
        }
      }
    }
    if (!live)
      continue;
    [[unroll]] for (uint t = 0; t < OC; t++) {
      if (o0 + t >= p.c_out)
        break;
      uint yi = p.y_off + ((bi * p.c_out + o0 + t) * p.h_out + oy) * p.w_out + ox0;
      if (VEC4_Y != 0u) {
        y4[yi / 4u] = acc[t];
      } else {
        [[unroll]] for (uint q = 0; q < PX; q++)
          if (ox0 + q < p.w_out)
            y[yi + q] = acc[t][q];
      }
    }
  }
}

void main ()
{
  if (SG != 0u && TRANSPOSED == 0u) {
    conv_lanes ();
    return;
  }
  uint bi = gl_WorkGroupID.z, o0 = gl_WorkGroupID.y * OC;
  uint oc[OC];
  [[unroll]] for (uint t = 0; t < OC; t++)
    oc[t] = min (o0 + t, p.c_out - 1u);
  for (uint pix = p.g0 + gl_GlobalInvocationID.x; pix < p.g1; pix += ts_grid_stride ()) {
    uint oy = pix / p.w_out, ox = pix - oy * p.w_out;
    float acc[OC];
    [[unroll]] for (uint t = 0; t < OC; t++)
      acc[t] = p.has_bias != 0u ? bias[p.b_off + oc[t]] : 0.0;
    if (TRANSPOSED != 0u) {
      uint kk = p.kh, iy = oy / kk, ix = ox / kk, py = oy - iy * kk, px = ox - ix * kk;
      for (uint c = 0; c < p.c_in; c++) {
        float xv = x[p.x_off + ((bi * p.c_in + c) * p.h + iy) * p.w_in + ix];
        [[unroll]] for (uint t = 0; t < OC; t++)
          acc[t] += xv * w[p.w_off + ((c * p.c_out + oc[t]) * kk + py) * kk + px];
      }
    } else {
      int y0 = int (oy * p.stride) - int (p.pad_top), x0 = int (ox * p.stride) - int (p.pad_left);
      uint ky0 = uint (max (-y0, 0)), ky1 = uint (clamp (int (p.h) - y0, 0, int (p.kh)));
      uint kx0 = uint (max (-x0, 0)), kx1 = uint (clamp (int (p.w_in) - x0, 0, int (p.kw)));
      for (uint c = 0; c < p.c_in; c++) {
        uint xc = p.x_off + (bi * p.c_in + c) * p.h * p.w_in;
        uint wc = p.w_off + c * p.kh * p.kw;
        for (uint ky = ky0; ky < ky1; ky++) {
          uint xr = xc + uint (y0 + int (ky)) * p.w_in;
          for (uint kx = kx0; kx < kx1; kx++) {
            float xv = x[xr + uint (x0 + int (kx))];
            uint wi = wc + ky * p.kw + kx;
            [[unroll]] for (uint t = 0; t < OC; t++)
              acc[t] += xv * w[wi + oc[t] * p.c_in * p.kh * p.kw];
          }
        }
      }
    }
    [[unroll]] for (uint t = 0; t < OC; t++)
      if (o0 + t < p.c_out)
        y[p.y_off + ((bi * p.c_out + o0 + t) * p.h_out + oy) * p.w_out + ox] = acc[t];
  }
}
