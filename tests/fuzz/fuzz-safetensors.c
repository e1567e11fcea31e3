/* SPDX-License-Identifier: MIT
 *
 * libFuzzer harness for ts-safetensors, the first stage to touch a downloaded file: any
 * input must either open and then be fully walkable (every tensor found by name, small
 * ones converted, data inside the input) or fail with a message — never crash, leak or
 * read out of bounds. Built by tests/fuzz/meson.build with -Dfuzzing=true under
 * ASan+UBSan; seeds in tests/fuzz/corpus/safetensors (tools/make-fuzz-seeds.py).
 */
#include "model/ts-safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Conversions are O(n): keep an iteration fast by skipping big tensors. */
#define MAX_CONVERT 4096

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ts_error err;
  ts_safetensors *st = ts_safetensors_open_memory (data, size, "fuzz", &err);
  float *f = NULL;
  int64_t *v = NULL;

  if (!st) {
    /* Every failure names the input and says something. */
    if (err.code >= 0 || strncmp (err.message, "fuzz: ", 6) != 0 || !err.message[6])
      abort ();
    return 0;
  }
  f = malloc (MAX_CONVERT * sizeof *f);
  v = malloc (MAX_CONVERT * sizeof *v);
  if (!f || !v)
    abort ();
  ts_safetensors_metadata (st, "format");
  for (size_t i = 0; i < ts_safetensors_n_tensors (st); i++) {
    const ts_st_tensor *t = ts_safetensors_tensor (st, i);
    const uint8_t *p = t->data;

    if (ts_safetensors_find (st, t->name) != t)
      abort ();
    if (t->size_bytes != t->n_elements * ts_dtype_size (t->dtype))
      abort ();
    if (p < data || (size_t) (p - data) > size || t->size_bytes > size - (size_t) (p - data))
      abort ();
    if (t->n_elements <= MAX_CONVERT) {
      ts_st_tensor_to_f32 (t, f, &err);
      ts_st_tensor_to_i64 (t, v, &err);
    }
  }
  free (f);
  free (v);
  ts_safetensors_free (st);
  return 0;
}
