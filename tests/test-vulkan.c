/* SPDX-License-Identifier: MIT
 *
 * test-vulkan — the Vulkan backend beyond single kernels: a missing driver is a clear
 * error and the process goes on (the CPU retry works), TESSERA_VK_MAX_MEMORY makes an
 * allocation fail with an error that names the bytes, the staging path (device memory
 * never mapped) moves data both ways intact, and a free generation with the golden set's
 * tiny model agrees with the CPU on at least 99 % of the tokens for the same seed. Uses
 * the first device, CPU-type included (CI runs lavapipe); exits 77 only when there is no
 * Vulkan device at all.
 */
#include "backend/ts-backend.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

static void
test_no_device (void)
{
  if (g_test_subprocess ()) {
    ts_backend be = { 0 };
    ts_error err = { TS_OK, "" };
    ts_status st;
    ts_buffer *buf;
    float v = 3.0f, back = 0.0f;

    /* The loader reads VK_DRIVER_FILES when the instance is created. */
    g_setenv ("VK_DRIVER_FILES", "/nonexistent.json", TRUE);
    g_setenv ("VK_ICD_FILENAMES", "/nonexistent.json", TRUE);
    st = ts_backend_vulkan_new (&be, -1, &err);
    g_assert_cmpint (st, ==, TS_ERR_DEVICE);
    g_assert_null (be.ops);
    g_assert_nonnull (strstr (err.message, "no usable Vulkan driver"));
    g_printerr ("vulkan: %s\n", err.message);
    st = ts_backend_new_by_name (&be, "vulkan:0", 0, &err);
    g_assert_cmpint (st, ==, TS_ERR_DEVICE);
    /* The retry on the CPU, explicit and through "auto". */
    g_assert_cmpint (ts_backend_new_by_name (&be, "auto", 1, &err), ==, TS_OK);
    g_assert_cmpstr (ts_backend_name (&be), ==, "cpu");
    buf = ts_buffer_new (&be, sizeof v, &err);
    g_assert_nonnull (buf);
    g_assert_cmpint (ts_buffer_upload (&be, ts_ref_at (buf, 0), &v, sizeof v, &err), ==, TS_OK);
    g_assert_cmpint (ts_buffer_download (&be, ts_ref_at (buf, 0), &back, sizeof back, &err), ==,
                     TS_OK);
    g_assert_cmpfloat (back, ==, v);
    ts_buffer_free (&be, buf);
    ts_backend_free (&be);
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*no usable Vulkan driver*");
}

static void
test_out_of_memory (void)
{
  if (g_test_subprocess ()) {
    ts_backend be = { 0 };
    ts_error err = { TS_OK, "" };
    ts_buffer *a, *b;
    ts_weight w;
    int64_t shape[1] = { 300000 };
    float *host = g_new0 (float, 300000);

    g_setenv ("TESSERA_VK_MAX_MEMORY", "1M", TRUE);
    g_assert_cmpint (ts_backend_vulkan_new (&be, 0, &err), ==, TS_OK);
    a = ts_buffer_new (&be, 512 * 1024, &err);
    g_assert_nonnull (a);
    b = ts_buffer_new (&be, 1048576, &err);
    g_assert_null (b);
    g_assert_cmpint (err.code, ==, TS_ERR_NOMEM);
    g_assert_nonnull (strstr (err.message, "1048576 bytes"));
    g_printerr ("vulkan: %s\n", err.message);
    g_assert_cmpint (ts_weight_upload (&be, &w, "big.weight", TS_DTYPE_F32, host, 1,
                                       shape, &err),
                     ==, TS_ERR_NOMEM);
    g_assert_nonnull (strstr (err.message, "big.weight"));
    g_assert_nonnull (strstr (err.message, "1200000 bytes"));
    /* The backend is still usable after the failures. */
    ts_buffer_free (&be, a);
    a = ts_buffer_new (&be, 768 * 1024, &err);
    g_assert_nonnull (a);
    g_assert_cmpint (ts_backend_sync (&be, &err), ==, TS_OK);
    ts_buffer_free (&be, a);
    ts_backend_free (&be);
    g_free (host);
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*out of device memory*1048576 bytes*");
}

static void
test_staging (void)
{
  if (g_test_subprocess ()) {
    const size_t n = 300001; /* more than vkCmdUpdateBuffer's 64 KiB, not a multiple of 4 */
    ts_backend be = { 0 };
    ts_error err = { TS_OK, "" };
    float *x = g_new (float, n), *y = g_new0 (float, n);
    ts_buffer *buf, *out;
    ts_elementwise_args a = { .kind = TS_EW_ADD, .rows = 1, .cols = (int64_t) n - 1,
                              .lda = (int64_t) n, .ldb = (int64_t) n, .ldy = (int64_t) n };

    g_setenv ("TESSERA_VK_STAGING", "1", TRUE);
    for (size_t i = 0; i < n; i++)
      x[i] = (float) i * 0.5f;
    g_assert_cmpint (ts_backend_vulkan_new (&be, 0, &err), ==, TS_OK);
    buf = ts_buffer_new (&be, n * sizeof (float), &err);
    g_assert_nonnull (buf);
    g_assert_null (buf->data); /* really not mapped */
    g_assert_cmpint (ts_buffer_upload (&be, ts_ref_at (buf, 0), x, n * sizeof (float), &err),
                     ==, TS_OK);
    /* out[i] = x[i] + x[1 + i]; the last element of out stays zero. */
    out = ts_buffer_new (&be, n * sizeof (float), &err);
    g_assert_nonnull (out);
    a.a = ts_ref_at (buf, 0);
    a.b = ts_ref_at (buf, sizeof (float));
    a.y = ts_ref_at (out, 0);
    g_assert_cmpint (ts_op_elementwise (&be, &a, &err), ==, TS_OK);
    g_assert_cmpint (ts_buffer_download (&be, ts_ref_at (out, 0), y, n * sizeof (float), &err),
                     ==, TS_OK);
    for (size_t i = 0; i + 1 < n; i++)
      g_assert_cmpfloat (y[i], ==, x[i] + x[i + 1]);
    g_assert_cmpfloat (y[n - 1], ==, 0.0f);
    ts_buffer_free (&be, out);
    ts_buffer_free (&be, buf);
    ts_backend_free (&be);
    g_free (x);
    g_free (y);
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

static int32_t *
generate (const char *dir, const char *backend, int *n_tokens)
{
  ts_model_load_params lp;
  ts_generate_params gp;
  ts_result res = { 0 };
  ts_error err = { TS_OK, "" };
  ts_model *m;
  int32_t *tokens;

  ts_model_load_params_init (&lp);
  lp.backend = backend;
  lp.n_threads = 2;
  m = ts_model_load (dir, &lp, &err);
  if (!m)
    g_error ("%s: cannot load %s: %s", backend, dir, err.message);
  ts_generate_params_init (&gp);
  gp.prompt = "a lighthouse on a cliff at sunset";
  /* A small image and few steps keep lavapipe's share of CI short. */
  gp.width = gp.height = 512;
  gp.steps = 6;
  gp.seed = 1234;
  if (ts_model_generate (m, &gp, &res, &err) != TS_OK)
    g_error ("%s: generate: %s", backend, err.message);
  *n_tokens = res.grid_h * res.grid_w;
  tokens = g_memdup2 (res.tokens, (gsize) *n_tokens * sizeof *tokens);
  ts_result_free (&res);
  ts_model_free (m);
  return tokens;
}

static void
test_generate_agrees (void)
{
  const char *golden = g_getenv ("TESSERA_GOLDEN_DIR");
  g_autofree char *dir = NULL;
  int32_t *cpu, *vk;
  int n_cpu = 0, n_vk = 0, same = 0;

  if (!golden || !*golden) {
    g_test_skip ("TESSERA_GOLDEN_DIR is not set");
    return;
  }
  dir = g_build_filename (golden, "models", "tiny-meissonic", NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_test_skip ("golden folder absent");
    return;
  }
  cpu = generate (dir, "cpu", &n_cpu);
  vk = generate (dir, "vulkan:0", &n_vk);
  g_assert_cmpint (n_cpu, ==, n_vk);
  g_assert_cmpint (n_cpu, >, 0);
  for (int i = 0; i < n_cpu; i++)
    same += cpu[i] == vk[i];
  g_test_message ("vulkan agrees with cpu on %d of %d tokens", same, n_cpu);
  g_assert_cmpint (same * 100, >=, n_cpu * 99);
  g_free (cpu);
  g_free (vk);
}

int
main (int argc, char **argv)
{
  ts_vk_device_info info[4];
  ts_error err = { TS_OK, "" };
  int n = 0;

  g_test_init (&argc, &argv, NULL);
  if (!g_test_subprocess ()
      && (ts_vulkan_list_devices (info, 4, &n, &err) != TS_OK || n == 0)) {
    g_printerr ("SKIP: no Vulkan device (%s)\n", err.message[0] ? err.message : "none listed");
    return 77;
  }
  g_test_add_func ("/vulkan/no-device", test_no_device);
  g_test_add_func ("/vulkan/out-of-memory", test_out_of_memory);
  g_test_add_func ("/vulkan/staging", test_staging);
  g_test_add_func ("/vulkan/generate-agrees", test_generate_agrees);
  return g_test_run ();
}
