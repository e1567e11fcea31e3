/* SPDX-License-Identifier: MIT
 *
 * Golden test of the VQ-VAE: runs the `vq_decode` and `vq_encode` cases of
 * $TESSERA_GOLDEN_DIR/index.json on both CPU backends (cpu-ref and cpu) and prints every
 * tensor's max abs error. Also: the fp16 weight variant decodes within 1e-2 of the fp32
 * weights (relative to the largest output magnitude; there is no golden for it), the
 * uint8 conversion rounds half to even like numpy, and bad sizes or ids are rejected.
 * Skips when the golden folder is absent.
 */
#include "backend/ts-backend.h"
#include "golden-test-common.h"
#include "stages/ts-vq-config.h"
#include "stages/ts-vq.h"

#include <glib.h>
#include <math.h>
#include <string.h>

/* fp16 weights vs fp32 weights, max abs difference / max |fp32 output|. The README expects
 * about 1e-2 relative for half-precision engines; observed values are printed. */
#define FP16_REL_BOUND 1e-2

typedef ts_status (*runner_fn) (const char *, const cJSON *, const ts_backend *,
                                ts_golden_report_fn, void *, ts_error *);

static void
run_case (const char *case_name, runner_fn run, bool reference, int min_checks)
{
  const char *dir = golden_dir ();
  if (!dir) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return;
  }
  cJSON *index = load_index (dir);
  const cJSON *entry = cJSON_GetObjectItem (cJSON_GetObjectItem (index, "cases"), case_name);
  g_assert_nonnull (entry);

  ts_backend be;
  ts_error err = { 0 };
  g_assert_cmpint (ts_backend_cpu_new (&be, reference, 2, &err), ==, TS_OK);
  g_test_message ("backend %s", ts_backend_name (&be));
  counts c = { 0, 0 };
  ts_status st = run (dir, entry, &be, report_cb, &c, &err);
  if (st != TS_OK)
    g_test_message ("%s", err.message);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (c.n_fail, ==, 0);
  g_assert_cmpint (c.n_pass, >=, min_checks);
  ts_backend_free (&be);
  cJSON_Delete (index);
}

static void
test_decode (gconstpointer data)
{
  /* sample, clipped, uint8, quant, post_quant_conv, conv_in, mid, 5 up blocks, norm_out */
  run_case ("vq_decode", ts_golden_run_vq_decode, GPOINTER_TO_INT (data), 13);
}

static void
test_encode (gconstpointer data)
{
  /* latents, indices, quantized, margin, conv_in, 5 down blocks, mid, conv_out */
  run_case ("vq_encode", ts_golden_run_vq_encode, GPOINTER_TO_INT (data), 12);
}

static ts_vq *
open_vq (const char *dir, const ts_backend *be, const char *variant, ts_error *err)
{
  g_autofree char *vq_dir = g_build_filename (dir, "models", "tiny-meissonic", "vqvae", NULL);
  g_autofree char *cfg_path = g_build_filename (vq_dir, "config.json", NULL);
  ts_vq_config cfg;
  g_assert_cmpint (ts_vq_config_from_file (cfg_path, &cfg, err), ==, TS_OK);
  ts_st_set *set = ts_st_set_open (vq_dir, "diffusion_pytorch_model", variant, err);
  g_assert_nonnull (set);
  if (variant) {
    g_assert_cmpint (ts_st_set_n_files (set), ==, 1);
    g_assert_nonnull (strstr (ts_st_set_file (set, 0), ".fp16."));
    g_assert_cmpint (ts_st_set_find (set, "decoder.conv_in.weight")->dtype, ==, TS_DTYPE_F16);
  }
  ts_vq *vq = ts_vq_new (be, &cfg, set, err);
  ts_st_set_free (set);
  g_assert_nonnull (vq);
  return vq;
}

static void
test_fp16_weights (void)
{
  const char *dir = golden_dir ();
  if (!dir) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return;
  }
  ts_backend be;
  ts_error err = { 0 };
  g_assert_cmpint (ts_backend_cpu_new (&be, false, 2, &err), ==, TS_OK);
  ts_vq *vq32 = open_vq (dir, &be, NULL, &err);
  ts_vq *vq16 = open_vq (dir, &be, "fp16", &err);

  /* a fixed 2 x 3 x 5 grid spread over the codebook */
  const int batch = 2, h = 3, w = 5, f = ts_vq_scale_factor (vq32);
  const int K = ts_vq_get_config (vq32)->num_vq_embeddings;
  int32_t ids[2 * 3 * 5];
  for (int i = 0; i < batch * h * w; i++)
    ids[i] = (int32_t) ((i * 37 + 11) % K);
  const size_t n = (size_t) batch * 3 * (size_t) (h * f) * (size_t) (w * f);
  float *a = g_new (float, n), *b = g_new (float, n);
  g_assert_cmpint (ts_vq_decode (vq32, ids, batch, h, w, a, NULL, &err), ==, TS_OK);
  g_assert_cmpint (ts_vq_decode (vq16, ids, batch, h, w, b, NULL, &err), ==, TS_OK);
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < n; i++) {
    g_assert_true (isfinite (b[i]));
    max_ref = fmax (max_ref, fabs (a[i]));
    max_diff = fmax (max_diff, fabs ((double) a[i] - b[i]));
  }
  g_test_message ("fp16 weights vs fp32 weights: max abs diff %.3e, max |out| %.3e, "
                  "relative %.3e (bound %.0e)", max_diff, max_ref, max_diff / max_ref,
                  FP16_REL_BOUND);
  g_assert_cmpfloat (max_ref, >, 0.1);
  g_assert_cmpfloat (max_diff, >, 0.0); /* the variant really was different */
  g_assert_cmpfloat (max_diff, <=, FP16_REL_BOUND * max_ref);
  g_free (a);
  g_free (b);
  ts_vq_free (vq16);
  ts_vq_free (vq32);
  ts_backend_free (&be);
}

static void
test_to_uint8 (void)
{
  /* NCHW 1 x 3 x 1 x 4 */
  const float img[12] = { -1.0f, 0.0f, 1.0f, 2.0f,   NAN, 0.5f, 1e-3f, 0.999f,
                          0.2f, 0.25f, 0.75f, 1.0f / 255.0f };
  uint8_t rgb[12];
  ts_vq_to_uint8 (img, 1, 1, 4, rgb);
  const uint8_t expect[12] = { 0, 0, 51,   0, 128, 64,   255, 0, 191,   255, 255, 1 };
  for (int i = 0; i < 12; i++)
    g_assert_cmpint (rgb[i], ==, expect[i]);

  /* ties: every x whose fp32 product x·255 is exactly k + 0.5 rounds to the even k */
  int n_ties = 0;
  for (int k = 0; k < 255; k++) {
    const float x = ((float) k + 0.5f) / 255.0f;
    if (x * 255.0f != (float) k + 0.5f)
      continue;
    const float planes[3] = { x, x, x };
    uint8_t px[3];
    ts_vq_to_uint8 (planes, 1, 1, 1, px);
    g_assert_cmpint (px[0], ==, (k % 2 == 0) ? k : k + 1);
    n_ties++;
  }
  g_test_message ("%d exact ties checked", n_ties);
  g_assert_cmpint (n_ties, >, 10);
}

/* The conversion applied to the official float output gives the official pixels exactly. */
static void
test_to_uint8_reference (void)
{
  const char *dir = golden_dir ();
  if (!dir) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return;
  }
  g_autofree char *path = g_build_filename (dir, "cases", "vq_decode.safetensors", NULL);
  ts_error err = { 0 };
  ts_safetensors *st = ts_safetensors_open (path, &err);
  g_assert_nonnull (st);
  const ts_st_tensor *sample = ts_safetensors_find (st, "out.sample");
  const ts_st_tensor *pixels = ts_safetensors_find (st, "out.image_uint8");
  g_assert_nonnull (sample);
  g_assert_nonnull (pixels);
  g_assert_cmpint (sample->n_dims, ==, 4);
  g_assert_cmpint (sample->shape[1], ==, 3);
  g_assert_cmpuint (pixels->n_elements, ==, sample->n_elements);
  float *x = g_new (float, sample->n_elements);
  uint8_t *rgb = g_new (uint8_t, sample->n_elements);
  g_assert_cmpint (ts_st_tensor_to_f32 (sample, x, &err), ==, TS_OK);
  ts_vq_to_uint8 (x, (int) sample->shape[0], (int) sample->shape[2], (int) sample->shape[3], rgb);
  g_assert_cmpmem (rgb, sample->n_elements, pixels->data, pixels->n_elements);
  g_free (x);
  g_free (rgb);
  ts_safetensors_free (st);
}

static void
test_invalid (void)
{
  const char *dir = golden_dir ();
  if (!dir) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return;
  }
  ts_backend be;
  ts_error err = { 0 };
  g_assert_cmpint (ts_backend_cpu_new (&be, true, 1, &err), ==, TS_OK);
  ts_vq *vq = open_vq (dir, &be, NULL, &err);
  const int f = ts_vq_scale_factor (vq);
  g_assert_cmpint (f, ==, 16);

  int32_t ids[4] = { 0, 1, 2, 96 };
  float *out = g_new0 (float, 3 * 4 * (size_t) f * f);
  g_assert_cmpint (ts_vq_decode (vq, ids, 1, 2, 2, out, NULL, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "96"));
  ids[3] = -1;
  g_assert_cmpint (ts_vq_decode (vq, ids, 1, 2, 2, out, NULL, &err), ==, TS_ERR_INVALID_ARG);
  ids[3] = 3;
  g_assert_cmpint (ts_vq_decode (vq, ids, 1, 0, 2, out, NULL, &err), ==, TS_ERR_INVALID_ARG);

  float *img = g_new0 (float, 3 * 24 * 32);
  int32_t got[4];
  g_assert_cmpint (ts_vq_encode (vq, img, 1, 24, 32, got, NULL, NULL, &err), ==,
                   TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "multiple of 16"));
  g_assert_cmpint (ts_vq_encode (vq, img, 1, 16, 32, got, NULL, NULL, &err), ==, TS_OK);
  for (int i = 0; i < 2; i++)
    g_assert_true (got[i] >= 0 && got[i] < 96);
  g_free (img);
  g_free (out);
  ts_vq_free (vq);
  ts_backend_free (&be);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/golden/vq_decode/cpu-ref", GINT_TO_POINTER (1), test_decode);
  g_test_add_data_func ("/golden/vq_decode/cpu", GINT_TO_POINTER (0), test_decode);
  g_test_add_data_func ("/golden/vq_encode/cpu-ref", GINT_TO_POINTER (1), test_encode);
  g_test_add_data_func ("/golden/vq_encode/cpu", GINT_TO_POINTER (0), test_encode);
  g_test_add_func ("/golden/vq/fp16-weights", test_fp16_weights);
  g_test_add_func ("/golden/vq/to-uint8", test_to_uint8);
  g_test_add_func ("/golden/vq/to-uint8-reference", test_to_uint8_reference);
  g_test_add_func ("/golden/vq/invalid", test_invalid);
  return g_test_run ();
}
