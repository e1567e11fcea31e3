// SPDX-License-Identifier: MIT
//
// conv2d.comp — 2-D convolution over NCHW with zero padding (possibly asymmetric) and
// stride, and, with specialization constant 1 (TRANSPOSED) set, the non-overlapping
// transposed convolution nn.ConvTranspose2d(k, stride=k) (kh = kw = stride = k,
// h_out = h * k); the twin of engine/cpu/ts-cpu-conv2d.c.
//
// Each invocation computes OC output channels (specialization constant 2) at one output
// pixel, so every input value it loads feeds OC multiply-adds; consecutive invocations
// take consecutive pixels of a row (contiguous loads of x). Push constants:
// ts_vk_conv2d_push.
#version 450
#include "common.glsl"

layout(constant_id = 1) const uint TRANSPOSED = 0;
layout(constant_id = 2) const uint OC = 4;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint x_off, w_off, b_off, y_off;
  uint batch, c_in, h, w_in, c_out, h_out, w_out;
  uint kh, kw, stride, pad_top, pad_left, has_bias;
} p;

void main ()
{
  uint plane = p.h_out * p.w_out;
  uint oc_tiles = (p.c_out + OC - 1u) / OC;
  uint total = p.batch * oc_tiles * plane;
  for (uint idx = gl_GlobalInvocationID.x; idx < total; idx += ts_grid_stride ()) {
    uint bt = idx / plane, pix = idx - bt * plane;
    uint bi = bt / oc_tiles, o0 = (bt - bi * oc_tiles) * OC;
    uint oy = pix / p.w_out, ox = pix - oy * p.w_out;
    float acc[OC];
    uint oc[OC];
    [[unroll]] for (uint t = 0; t < OC; t++) {
      oc[t] = min (o0 + t, p.c_out - 1u);
      acc[t] = p.has_bias != 0u ? bias[p.b_off + oc[t]] : 0.0;
    }
    if (TRANSPOSED != 0u) {
      uint kk = p.kh, iy = oy / kk, ix = ox / kk, py = oy - iy * kk, px = ox - ix * kk;
      for (uint c = 0; c < p.c_in; c++) {
        float xv = x[p.x_off + ((bi * p.c_in + c) * p.h + iy) * p.w_in + ix];
        [[unroll]] for (uint t = 0; t < OC; t++)
          acc[t] += xv * w[p.w_off + ((c * p.c_out + oc[t]) * kk + py) * kk + px];
      }
    } else {
      int y0 = int (oy * p.stride) - int (p.pad_top), x0 = int (ox * p.stride) - int (p.pad_left);
      for (uint c = 0; c < p.c_in; c++) {
        uint xc = p.x_off + (bi * p.c_in + c) * p.h * p.w_in;
        for (uint ky = 0; ky < p.kh; ky++) {
          int iy = y0 + int (ky);
          if (iy < 0 || iy >= int (p.h))
            continue;
          for (uint kx = 0; kx < p.kw; kx++) {
            int ix = x0 + int (kx);
            if (ix < 0 || ix >= int (p.w_in))
              continue;
            float xv = x[xc + uint (iy) * p.w_in + uint (ix)];
            [[unroll]] for (uint t = 0; t < OC; t++)
              acc[t] += xv * w[p.w_off + ((oc[t] * p.c_in + c) * p.kh + ky) * p.kw + kx];
          }
        }
      }
    }
    [[unroll]] for (uint t = 0; t < OC; t++)
      if (o0 + t < p.c_out)
        y[p.y_off + ((bi * p.c_out + o0 + t) * p.h_out + oy) * p.w_out + ox] = acc[t];
  }
}
