// SPDX-License-Identifier: MIT
//
// common.glsl — declarations shared by every compute shader in shaders/: the workgroup
// size (specialization constant 0, so the host picks it per device), a grid-stride helper
// for 1-D kernels, and the math helpers GLSL lacks or gets wrong at the extremes (erf; a
// tanh that does not overflow to NaN for large arguments). Every shader binds its operands
// as std430 float arrays at bindings 0..5 and receives each operand's element offset
// inside its binding as a push constant (see engine/backend/vk/ts-vk-kernels.h).

#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 64;

// Total invocations of a 1-D dispatch: the stride of a grid-stride loop.
uint ts_grid_stride () { return gl_NumWorkGroups.x * WG; }

// tanh clamped where it has long reached +-1 in fp32, so exp-based implementations cannot
// produce inf / inf.
float ts_tanh (float x) { return tanh (clamp (x, -15.0, 15.0)); }

// erf from Abramowitz & Stegun 7.1.26 refined with one more term set (W. J. Cody's
// rational form is overkill here): max absolute error 1.2e-7, exact limits at +-inf.
float ts_erf (float x)
{
  float ax = abs (x);
  float t = 1.0 / (1.0 + 0.5 * ax);
  // Numerical Recipes erfc (Chebyshev fit, fractional error < 1.2e-7 everywhere).
  float r = t * exp (-ax * ax - 1.26551223
                     + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                     + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398
                     + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  float e = 1.0 - r;
  return x >= 0.0 ? e : (x < 0.0 ? -e : x); // NaN stays NaN
}
