/* SPDX-License-Identifier: MIT
 *
 * ts-golden-transformer — replays a golden "transformer_forward" case (index.json entry
 * plus cases/<name>.safetensors) through ts_transformer on one backend. Everything comes
 * from the entry: the case file, the model folder, the latent grid (checked against
 * height_px / width_px / vae_scale_factor and the input tokens), the timestep and the list
 * of tensors to compare. Intermediates arrive through the stage's capture hook and are
 * compared as they come; a listed intermediate the stage never produced is a failure.
 *
 * Tolerances follow the golden README: outputs atol 5e-5, rtol 1e-4 (element-wise
 * |engine − ref| <= atol + rtol·|ref|); intermediates the same with atol scaled by the
 * tensor's largest magnitude (when above 1), since their values are not O(1). A tensor
 * the entry's "tolerance" table names gets the table's atol/rtol instead, unscaled
 * (ts-golden-case.h).
 */
#include "devkit/golden/ts-golden.h"

#include "devkit/golden/ts-golden-case.h"

#include "core/ts-common.h"
#include "model/ts-safetensors.h"
#include "stages/ts-transformer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TS_GOLDEN_TF_ATOL 5e-5
#define TS_GOLDEN_TF_RTOL 1e-4
#define TS_GOLDEN_PATH_MAX 4096

typedef struct {
  const char *case_name;
  const cJSON *entry;   /* the index entry (its tolerance table) */
  const cJSON *tensors; /* the entry's tensor list */
  const ts_safetensors *file;
  ts_golden_report_fn report;
  void *ud;
  bool bf16; /* precision bf16's rule (ts_golden_bf16_rule) */
  int n_failed;
  ts_status fatal; /* out of memory while comparing */
  char **seen;
  size_t n_seen, seen_capacity;
} ts_golden_tf_ctx;

static bool
tf_golden_listed (const ts_golden_tf_ctx *c, const char *name)
{
  return cJSON_GetObjectItemCaseSensitive (c->tensors, name) != NULL;
}

static void
tf_golden_mark_seen (ts_golden_tf_ctx *c, const char *name)
{
  if (c->n_seen == c->seen_capacity) {
    size_t cap = c->seen_capacity ? 2 * c->seen_capacity : 32;
    char **grown = realloc (c->seen, cap * sizeof *grown);
    if (!grown) {
      c->fatal = TS_ERR_NOMEM;
      return;
    }
    c->seen = grown;
    c->seen_capacity = cap;
  }
  c->seen[c->n_seen] = strdup (name);
  if (!c->seen[c->n_seen]) {
    c->fatal = TS_ERR_NOMEM;
    return;
  }
  c->n_seen++;
}

static bool
tf_golden_was_seen (const ts_golden_tf_ctx *c, const char *name)
{
  for (size_t i = 0; i < c->n_seen; i++)
    if (strcmp (c->seen[i], name) == 0)
      return true;
  return false;
}

static void
tf_golden_fail (ts_golden_tf_ctx *c, const char *name, const char *why)
{
  TS_LOG_W ("golden: %s: %s: %s", c->case_name, name, why);
  c->report (c->ud, c->case_name, name, INFINITY, 0.0, false);
  c->n_failed++;
}

/* Compares `data` (shape n_dims/shape) with the case file's tensor `ref_name` and reports
 * it as `name`. */
static void
tf_golden_compare (ts_golden_tf_ctx *c, const char *name, const char *ref_name,
                   const float *data, int n_dims, const int64_t *shape, bool intermediate)
{
  const ts_st_tensor *t = ts_safetensors_find (c->file, ref_name);
  if (!t) {
    tf_golden_fail (c, name, "listed in index.json but missing from the case file");
    return;
  }
  bool same = t->n_dims == n_dims;
  for (int i = 0; same && i < n_dims; i++)
    same = t->shape[i] == shape[i];
  if (!same) {
    char msg[256];
    int used = snprintf (msg, sizeof msg, "engine shape [");
    for (int i = 0; i < n_dims && used < (int) sizeof msg; i++)
      used += snprintf (msg + used, sizeof msg - (size_t) used, "%s%lld", i ? "," : "",
                        (long long) shape[i]);
    if (used < (int) sizeof msg)
      used += snprintf (msg + used, sizeof msg - (size_t) used, "] differs from the reference [");
    for (int i = 0; i < t->n_dims && used < (int) sizeof msg; i++)
      used += snprintf (msg + used, sizeof msg - (size_t) used, "%s%lld", i ? "," : "",
                        (long long) t->shape[i]);
    if (used < (int) sizeof msg)
      snprintf (msg + used, sizeof msg - (size_t) used, "]");
    tf_golden_fail (c, name, msg);
    return;
  }
  float *ref = malloc ((t->n_elements ? t->n_elements : 1) * sizeof (float));
  if (!ref) {
    c->fatal = TS_ERR_NOMEM;
    return;
  }
  ts_error e;
  if (ts_st_tensor_to_f32 (t, ref, &e) != TS_OK) {
    tf_golden_fail (c, name, e.message);
    free (ref);
    return;
  }
  if (c->bf16) {
    double *r64 = malloc ((t->n_elements ? t->n_elements : 1) * sizeof *r64);
    double nrms;
    if (!r64) {
      c->fatal = TS_ERR_NOMEM;
      free (ref);
      return;
    }
    for (size_t i = 0; i < t->n_elements; i++)
      r64[i] = ref[i];
    nrms = ts_golden_nrms (data, r64, t->n_elements);
    free (r64);
    free (ref);
    /* out.cfg_logits_g<G>: the rule carried through the guidance combination */
    const char *g_at = strstr (name, "cfg_logits_g");
    double rule = g_at ? ts_golden_bf16_cfg_rule (strtod (g_at + 12, NULL)) : TS_GOLDEN_BF16_NRMS;
    if (!(nrms <= rule)) {
      TS_LOG_W ("golden: %s: %s: normalised RMS error %.3g over the bf16 rule's %.3g",
                c->case_name, name, nrms, rule);
      c->n_failed++;
    }
    c->report (c->ud, c->case_name, name, nrms, rule, nrms <= rule);
    return;
  }
  double magnitude = 0.0;
  for (size_t i = 0; i < t->n_elements; i++)
    if (fabs (ref[i]) > magnitude)
      magnitude = fabs (ref[i]);
  double atol = TS_GOLDEN_TF_ATOL * (intermediate && magnitude > 1.0 ? magnitude : 1.0);
  double rtol = TS_GOLDEN_TF_RTOL;
  if (t->dtype == TS_DTYPE_F32 || t->dtype == TS_DTYPE_F16 || t->dtype == TS_DTYPE_BF16)
    ts_golden_tolerance_lookup (c->entry, ref_name, &atol, &rtol);
  double max_err = 0.0, tol_at_max = atol;
  size_t i_max = 0, n_bad = 0, i_bad = 0;
  for (size_t i = 0; i < t->n_elements; i++) {
    double d = fabs ((double) data[i] - (double) ref[i]);
    if (isnan (d))
      d = INFINITY;
    double tol = atol + rtol * fabs (ref[i]);
    if (!(d <= tol)) {
      if (!n_bad)
        i_bad = i;
      n_bad++;
    }
    if (d > max_err || (i == 0 && d >= max_err)) {
      max_err = d;
      tol_at_max = tol;
      i_max = i;
    }
  }
  if (n_bad)
    TS_LOG_W ("golden: %s: %s: %zu of %zu elements out of tolerance (first at %zu: engine %.9g, "
              "ref %.9g); max abs err %.3g at %zu (engine %.9g, ref %.9g, tolerance %.3g)",
              c->case_name, name, n_bad, t->n_elements, i_bad, (double) data[i_bad],
              (double) ref[i_bad], max_err, i_max, (double) data[i_max], (double) ref[i_max],
              tol_at_max);
  c->report (c->ud, c->case_name, name, max_err, tol_at_max, n_bad == 0);
  if (n_bad)
    c->n_failed++;
  free (ref);
}

static void
tf_golden_capture (void *user_data, const char *name, const float *data, int n_dims,
                   const int64_t *shape)
{
  ts_golden_tf_ctx *c = user_data;
  if (!tf_golden_listed (c, name))
    return;
  tf_golden_mark_seen (c, name);
  tf_golden_compare (c, name, name, data, n_dims, shape, true);
}

static const char *
tf_golden_str (const cJSON *entry, const char *key)
{
  const cJSON *j = cJSON_GetObjectItemCaseSensitive (entry, key);
  return cJSON_IsString (j) ? j->valuestring : NULL;
}

static bool
tf_golden_int (const cJSON *entry, const char *key, int64_t *out)
{
  const cJSON *j = cJSON_GetObjectItemCaseSensitive (entry, key);
  if (!cJSON_IsNumber (j) || j->valuedouble != floor (j->valuedouble))
    return false;
  *out = (int64_t) j->valuedouble;
  return true;
}

/* Reads a float tensor of the case file with the expected rank into a new array. */
static float *
tf_golden_read_f32 (const ts_safetensors *file, const char *name, int n_dims,
                    const ts_st_tensor **out_t, ts_error *err)
{
  const ts_st_tensor *t = ts_safetensors_find (file, name);
  if (!t || t->n_dims != n_dims) {
    ts_error_set (err, TS_ERR_FORMAT, "golden: case tensor '%s' missing or not %d-D", name,
                  n_dims);
    return NULL;
  }
  float *v = malloc ((t->n_elements ? t->n_elements : 1) * sizeof (float));
  if (!v) {
    ts_error_set (err, TS_ERR_NOMEM, "golden: out of memory");
    return NULL;
  }
  if (ts_st_tensor_to_f32 (t, v, err) != TS_OK) {
    free (v);
    return NULL;
  }
  *out_t = t;
  return v;
}

/* Builds an engine on the weights `variant` (NULL: the plain file) and runs the forward. */
static ts_status
tf_golden_forward (const ts_backend *be, const ts_transformer_config *cfg, const char *model_dir,
                   const char *variant, const ts_transformer_forward_args *args,
                   const ts_capture *cap, ts_error *err)
{
  ts_status st;
  ts_transformer *tf = NULL;
  ts_st_set *set = ts_st_set_open (model_dir, "diffusion_pytorch_model", variant, err);
  if (!set)
    return err ? err->code : TS_ERR_IO;
  if (variant) {
    /* ts_st_set_open falls back to the plain file; a fallback would compare the fp32
     * weights against the fp16 expectation. */
    char want[64];
    snprintf (want, sizeof want, ".%s.", variant);
    if (ts_st_set_n_files (set) < 1 || !strstr (ts_st_set_file (set, 0), want)) {
      st = ts_error_set (err, TS_ERR_NOT_FOUND, "golden: %s has no %s weight variant", model_dir,
                         variant);
      goto out;
    }
  }
  tf = ts_transformer_new (be, cfg, set, err);
  if (!tf) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto out;
  }
  st = ts_transformer_forward (tf, args, cap, NULL, err);
out:
  ts_transformer_free (tf);
  ts_st_set_free (set);
  return st;
}

/* out.cfg_logits_g<s>: uncond + s·(cond − uncond) through the backend's CFG op. */
static ts_status
tf_golden_cfg (const ts_backend *be, const float *logits, int64_t per_batch, float scale,
               float *out, ts_error *err)
{
  ts_status st;
  const size_t bytes = (size_t) per_batch * sizeof (float);
  ts_buffer *buf = ts_buffer_new (be, 3 * bytes, err);
  if (!buf)
    return err ? err->code : TS_ERR_NOMEM;
  if ((st = ts_buffer_upload (be, ts_ref_at (buf, 0), logits, 2 * bytes, err)) != TS_OK)
    goto out;
  ts_elementwise_args a = { .kind = TS_EW_CFG, .a = ts_ref_at (buf, 0), .b = ts_ref_at (buf, bytes),
                            .y = ts_ref_at (buf, 2 * bytes), .rows = 1, .cols = per_batch,
                            .lda = per_batch, .ldb = per_batch, .ldy = per_batch, .s = scale };
  if ((st = ts_op_elementwise (be, &a, err)) != TS_OK)
    goto out;
  st = ts_buffer_download (be, ts_ref_at (buf, 2 * bytes), out, bytes, err);
out:
  ts_buffer_free (be, buf);
  return st;
}

ts_status
ts_golden_run_transformer_forward (const char *golden_dir, const cJSON *case_entry,
                                   const ts_backend *be, ts_golden_report_fn report, void *ud,
                                   ts_error *err)
{
  ts_status st = TS_OK;
  ts_safetensors *file = NULL;
  float *enc = NULL, *pooled = NULL, *micro = NULL, *logits = NULL, *extra = NULL;
  int32_t *tokens = NULL;
  int64_t *ids64 = NULL;
  ts_golden_tf_ctx ctx = { 0 };
  char path[TS_GOLDEN_PATH_MAX], model_dir[TS_GOLDEN_PATH_MAX], case_name[256];

  const char *kind = tf_golden_str (case_entry, "kind");
  const char *file_rel = tf_golden_str (case_entry, "file");
  const char *model_rel = tf_golden_str (case_entry, "model");
  const cJSON *tensors = cJSON_GetObjectItemCaseSensitive (case_entry, "tensors");
  const cJSON *grid = cJSON_GetObjectItemCaseSensitive (case_entry, "latent_grid");
  int64_t height_px, width_px, scale_factor, timestep;
  if (!kind || strcmp (kind, "transformer_forward") != 0 || !file_rel || !model_rel
      || !cJSON_IsObject (tensors) || !cJSON_IsArray (grid) || cJSON_GetArraySize (grid) != 2
      || !tf_golden_int (case_entry, "height_px", &height_px)
      || !tf_golden_int (case_entry, "width_px", &width_px)
      || !tf_golden_int (case_entry, "vae_scale_factor", &scale_factor)
      || !tf_golden_int (case_entry, "timestep", &timestep) || scale_factor <= 0)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "golden: not a transformer_forward entry with file, model, tensors, "
                         "latent_grid, height_px, width_px, vae_scale_factor and timestep");
  if ((st = ts_golden_tolerance_validate (case_entry, err)) != TS_OK)
    return st;

  /* The case name is the file's base name: "cases/transformer_h1024.safetensors". */
  const char *base = strrchr (file_rel, '/');
  snprintf (case_name, sizeof case_name, "%s", base ? base + 1 : file_rel);
  char *dot = strstr (case_name, ".safetensors");
  if (dot)
    *dot = '\0';

  snprintf (path, sizeof path, "%s/%s", golden_dir, file_rel);
  snprintf (model_dir, sizeof model_dir, "%s/%s", golden_dir, model_rel);
  file = ts_safetensors_open (path, err);
  if (!file)
    return err ? err->code : TS_ERR_IO;

  ts_transformer_config cfg;
  char cfg_path[TS_GOLDEN_PATH_MAX + 16];
  snprintf (cfg_path, sizeof cfg_path, "%s/config.json", model_dir);
  if ((st = ts_transformer_config_from_file (cfg_path, &cfg, err)) != TS_OK)
    goto out;

  /* Inputs, exactly as the official call received them. */
  const ts_st_tensor *t_hs = ts_safetensors_find (file, "in.hidden_states");
  const ts_st_tensor *t_enc, *t_pooled, *t_micro;
  const ts_st_tensor *t_ts = ts_safetensors_find (file, "in.timestep");
  if (!t_hs || t_hs->n_dims != 3 || !t_ts || t_ts->n_elements != 1) {
    st = ts_error_set (err, TS_ERR_FORMAT, "golden: %s: in.hidden_states [B,H,W] or "
                                           "in.timestep [1] missing", case_name);
    goto out;
  }
  const int64_t B = t_hs->shape[0], H = t_hs->shape[1], W = t_hs->shape[2];
  const int64_t grid_h = (int64_t) cJSON_GetArrayItem (grid, 0)->valuedouble;
  const int64_t grid_w = (int64_t) cJSON_GetArrayItem (grid, 1)->valuedouble;
  if (H != grid_h || W != grid_w || height_px / scale_factor != H || width_px / scale_factor != W) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "golden: %s: token grid %lld×%lld disagrees with latent_grid %lld×%lld "
                       "or %lld×%lld px / %lld",
                       case_name, (long long) H, (long long) W, (long long) grid_h,
                       (long long) grid_w, (long long) height_px, (long long) width_px,
                       (long long) scale_factor);
    goto out;
  }
  ids64 = malloc ((size_t) (B * H * W) * sizeof *ids64);
  tokens = malloc ((size_t) (B * H * W) * sizeof *tokens);
  logits = malloc ((size_t) (B * cfg.codebook_size * H * W) * sizeof *logits);
  extra = malloc ((size_t) (B * cfg.codebook_size * H * W) * sizeof *extra);
  if (!ids64 || !tokens || !logits || !extra) {
    st = ts_error_set (err, TS_ERR_NOMEM, "golden: out of memory");
    goto out;
  }
  if ((st = ts_st_tensor_to_i64 (t_hs, ids64, err)) != TS_OK)
    goto out;
  for (int64_t i = 0; i < B * H * W; i++) {
    if (ids64[i] < INT32_MIN || ids64[i] > INT32_MAX) {
      st = ts_error_set (err, TS_ERR_FORMAT, "golden: %s: token %lld out of range", case_name,
                         (long long) ids64[i]);
      goto out;
    }
    tokens[i] = (int32_t) ids64[i];
  }
  int64_t t_file;
  if ((st = ts_st_tensor_to_i64 (t_ts, &t_file, err)) != TS_OK)
    goto out;
  if (t_file != timestep) {
    st = ts_error_set (err, TS_ERR_FORMAT, "golden: %s: in.timestep %lld != entry timestep %lld",
                       case_name, (long long) t_file, (long long) timestep);
    goto out;
  }
  if (!(enc = tf_golden_read_f32 (file, "in.encoder_hidden_states", 3, &t_enc, err))
      || !(pooled = tf_golden_read_f32 (file, "in.pooled_projections", 2, &t_pooled, err))
      || !(micro = tf_golden_read_f32 (file, "in.micro_conds", 2, &t_micro, err))) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto out;
  }
  if (t_enc->shape[0] != B || t_pooled->shape[0] != B || t_micro->shape[0] != B
      || t_micro->shape[1] != TS_TRANSFORMER_N_MICRO_CONDS) {
    st = ts_error_set (err, TS_ERR_FORMAT, "golden: %s: input batch sizes disagree", case_name);
    goto out;
  }
  for (int64_t b = 1; b < B; b++)
    if (memcmp (micro, micro + b * TS_TRANSFORMER_N_MICRO_CONDS,
                TS_TRANSFORMER_N_MICRO_CONDS * sizeof (float))
        != 0) {
      st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "golden: %s: micro_conds differ between batch entries", case_name);
      goto out;
    }

  ts_transformer_forward_args args = {
    .tokens = tokens, .batch = (int) B, .grid_h = (int) H, .grid_w = (int) W,
    .encoder_hidden_states = enc, .text_len = (int) t_enc->shape[1],
    .pooled_projections = pooled, .timestep = timestep, .logits = logits,
  };
  memcpy (args.micro_conds, micro, sizeof args.micro_conds);

  ctx.case_name = case_name;
  ctx.entry = case_entry;
  ctx.tensors = tensors;
  ctx.file = file;
  ctx.report = report;
  ctx.ud = ud;
  ctx.bf16 = ts_golden_bf16_rule (be);
  ts_capture cap = { tf_golden_capture, &ctx };
  if ((st = tf_golden_forward (be, &cfg, model_dir, NULL, &args, &cap, err)) != TS_OK)
    goto out;
  if (ctx.fatal != TS_OK) {
    st = ts_error_set (err, ctx.fatal, "golden: out of memory while comparing");
    goto out;
  }

  const int64_t per_batch = cfg.codebook_size * H * W;
  const int64_t s_logits[4] = { B, cfg.codebook_size, H, W };
  const cJSON *item;
  cJSON_ArrayForEach (item, tensors)
  {
    const char *name = item->string;
    if (strncmp (name, "mid.", 4) == 0) {
      if (!tf_golden_was_seen (&ctx, name))
        tf_golden_fail (&ctx, name, "the engine did not produce this intermediate");
    } else if (strcmp (name, "out.logits") == 0) {
      tf_golden_compare (&ctx, name, name, logits, 4, s_logits, false);
    } else if (strncmp (name, "out.cfg_logits_g", 16) == 0) {
      char *end;
      double g = strtod (name + 16, &end);
      if (end == name + 16 || *end || B != 2) {
        tf_golden_fail (&ctx, name, "needs a [uncond, cond] batch and a numeric scale");
        continue;
      }
      if ((st = tf_golden_cfg (be, logits, per_batch, (float) g, extra, err)) != TS_OK)
        goto out;
      const int64_t s_cfg[4] = { 1, cfg.codebook_size, H, W };
      tf_golden_compare (&ctx, name, name, extra, 4, s_cfg, false);
    } else if (strcmp (name, "out.logits_fp16_weights") == 0) {
      ts_transformer_forward_args a16 = args;
      a16.logits = extra;
      ts_error e16;
      if (tf_golden_forward (be, &cfg, model_dir, "fp16", &a16, NULL, &e16) != TS_OK)
        tf_golden_fail (&ctx, name, e16.message);
      else
        tf_golden_compare (&ctx, name, name, extra, 4, s_logits, false);
    } else if (strncmp (name, "out.", 4) == 0) {
      tf_golden_fail (&ctx, name, "an output this runner does not know how to produce");
    }
  }
  if (ctx.fatal != TS_OK) {
    st = ts_error_set (err, ctx.fatal, "golden: out of memory while comparing");
    goto out;
  }
  if (ctx.n_failed)
    st = ts_error_set (err, TS_ERR_MISMATCH, "golden: %s: %d tensor(s) out of tolerance on %s",
                       case_name, ctx.n_failed, ts_backend_name (be));

out:
  for (size_t i = 0; i < ctx.n_seen; i++)
    free (ctx.seen[i]);
  free (ctx.seen);
  free (ids64);
  free (tokens);
  free (enc);
  free (pooled);
  free (micro);
  free (logits);
  free (extra);
  ts_safetensors_free (file);
  return st;
}
