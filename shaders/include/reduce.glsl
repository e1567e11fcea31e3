// SPDX-License-Identifier: MIT
//
// reduce.glsl — workgroup-wide sum and max through shared memory, for the row kernels
// (norm, softmax, group_norm). WG must be a power of two. Every invocation of the
// workgroup must call these (they contain barriers) and gets the result.

shared float ts_red[WG];

float ts_wg_sum (float v)
{
  ts_red[gl_LocalInvocationID.x] = v;
  barrier ();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (gl_LocalInvocationID.x < s)
      ts_red[gl_LocalInvocationID.x] += ts_red[gl_LocalInvocationID.x + s];
    barrier ();
  }
  float r = ts_red[0];
  barrier ();
  return r;
}

float ts_wg_max (float v)
{
  ts_red[gl_LocalInvocationID.x] = v;
  barrier ();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (gl_LocalInvocationID.x < s)
      ts_red[gl_LocalInvocationID.x] = max (ts_red[gl_LocalInvocationID.x],
                                            ts_red[gl_LocalInvocationID.x + s]);
    barrier ();
  }
  float r = ts_red[0];
  barrier ();
  return r;
}
