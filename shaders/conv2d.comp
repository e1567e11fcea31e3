// SPDX-License-Identifier: MIT
//
// conv2d.comp — 2-D convolution over NCHW with zero padding (possibly asymmetric) and
// stride, and, with specialization constant 1 (TRANSPOSED) set, the non-overlapping
// transposed convolution nn.ConvTranspose2d(k, stride=k) (kh = kw = stride = k,
// h_out = h * k); the twin of engine/cpu/ts-cpu-conv2d.c.
//
// Each invocation computes OC output channels (specialization constant 2) at one output
// pixel, so every input value it loads feeds OC multiply-adds. A workgroup shares one
// tile of output channels (workgroup y) and one batch item (workgroup z), so the weight
// loads are the same for all its invocations, while consecutive invocations take
// consecutive pixels (contiguous loads of x). Push constants: ts_vk_conv2d_push.
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
  uint bi = gl_WorkGroupID.z, o0 = gl_WorkGroupID.y * OC;
  uint oc[OC];
  [[unroll]] for (uint t = 0; t < OC; t++)
    oc[t] = min (o0 + t, p.c_out - 1u);
  for (uint pix = gl_GlobalInvocationID.x; pix < plane; pix += ts_grid_stride ()) {
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
