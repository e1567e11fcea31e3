/* SPDX-License-Identifier: MIT
 *
 * ts-pipeline — the whole Meissonic pipeline behind the public ts_model API: load a
 * diffusers folder onto a backend, then prompt → tokenizer → CLIP → N × (transformer with
 * classifier-free guidance → MaskGIT step) → VQ decode → RGB8. Inpainting VQ-encodes an
 * image, masks the tokens under the mask and runs the last steps only.
 *
 * It mirrors `Pipeline.__call__` in src/pipeline.py and src/pipeline_inpaint.py of the
 * reference (viiika/Meissonic, 9360def / 4aa5998): batch [negative ; positive] when the
 * guidance scale is above 1, micro-conditions [width, height, crop_top, crop_left,
 * aesthetic], timesteps N-1 … 0, the decoded sample clipped to [0, 1] and rounded to uint8.
 * One deliberate difference: the position ids of the transformer come from the actual token
 * grid, which equals the reference in every case where the reference runs (golden README,
 * quirk 1) and also works at sizes where the reference raises a shape error.
 */
#include "pipeline/ts-pipeline.h"

#include "core/ts-common.h"
#include "core/ts-rng.h"
#include "model/ts-weights.h"
#include "pipeline/ts-model-files.h"
#include "stages/ts-sampler.h"
#include "stages/ts-text-encoder.h"
#include "stages/ts-transformer.h"
#include "stages/ts-vq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ts_model {
  char *dir;
  char *name;
  ts_backend be;
  bool own_backend;
  ts_precision precision; /* the backend's, FP32 or BF16 */
  ts_transformer_config tcfg;
  ts_vq_config vcfg;
  ts_clip_text_config ccfg;
  ts_scheduler_config scfg;
  double guidance; /* the model's recommended guidance scale */
  double n_params; /* of the three components, for the memory estimate */
  ts_tokenizer *tokenizer;
  ts_text_encoder *text_encoder;
  ts_transformer *transformer;
  ts_vq *vq;
  ts_model_stats stats;
};

void
ts_model_load_params_init (ts_model_load_params *p)
{
  memset (p, 0, sizeof *p);
}

void
ts_generate_params_init (ts_generate_params *p)
{
  memset (p, 0, sizeof *p);
  p->steps = 48;
  p->guidance = 9.0;
  p->temperature_start = 2.0;
  p->temperature_end = 0.0;
  p->aesthetic_score = 6.0;
}

void
ts_result_free (ts_result *r)
{
  if (!r)
    return;
  free (r->tokens);
  free (r->reveal_step);
  free (r->reveal_prob);
  ts_image_free (r->image);
  memset (r, 0, sizeof *r);
}

static void
report_progress (const ts_model_load_params *p, double fraction, const char *what)
{
  if (p && p->progress)
    p->progress (p->progress_data, fraction, what);
}

static char *
dup_string (const char *s)
{
  size_t n = strlen (s) + 1;
  char *d = malloc (n);
  if (d)
    memcpy (d, s, n);
  return d;
}

/* params->precision, where $TESSERA_PRECISION (fp32 or bf16) decides what AUTO means: the
 * test suite pins it to fp32, so that its exact comparisons hold on CPUs with native bf16. */
static ts_precision
model_precision (const ts_model_load_params *params)
{
  const char *env = getenv ("TESSERA_PRECISION");
  ts_precision p;

  if (params->precision == TS_PRECISION_AUTO && env && *env
      && ts_precision_parse (env, &p, NULL) == TS_OK)
    return p;
  return params->precision;
}

/* Loads onto `shared` when given (borrowed: the caller keeps it alive and frees it), else
 * onto a new backend of params->backend. */
static ts_model *
model_load (const char *dir, const ts_model_load_params *params, const ts_backend *shared,
            ts_error *err)
{
  ts_model_load_params defaults;
  ts_model_files *files = NULL;
  ts_model *m = NULL;
  const char *backend;
  double t0 = ts_time_now ();
  ts_status st;

  if (!dir) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "model: no folder given");
    return NULL;
  }
  if (!params) {
    ts_model_load_params_init (&defaults);
    params = &defaults;
  }
  backend = params->backend ? params->backend : "auto";
  if (!shared && !ts_backend_name_valid (backend)) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "model: unknown backend '%s' (this build has: %s)",
                  backend, ts_backend_names ());
    return NULL;
  }

  m = calloc (1, sizeof *m);
  if (!m || !(m->dir = dup_string (dir))) {
    ts_error_set (err, TS_ERR_NOMEM, "model: out of memory");
    goto fail;
  }
  {
    const char *base = strrchr (dir, '/');
    size_t len;
    base = base ? base + 1 : dir;
    /* "…/Meissonic/" names the folder before the trailing slash. */
    if (*base == '\0' && strlen (dir) > 1) {
      const char *end = dir + strlen (dir) - 1;
      while (end > dir && *end == '/')
        end--;
      base = end;
      while (base > dir && base[-1] != '/')
        base--;
      len = (size_t) (end - base + 1);
    } else {
      len = strlen (base);
    }
    m->name = malloc (len + 1);
    if (!m->name) {
      ts_error_set (err, TS_ERR_NOMEM, "model: out of memory");
      goto fail;
    }
    memcpy (m->name, base, len);
    m->name[len] = '\0';
  }

  report_progress (params, 0.0, "checking the model folder");
  files = ts_model_files_open (dir, params->prefer_fp16 ? TS_LOAD_PREFER_FP16 : TS_LOAD_DEFAULT, err);
  if (!files)
    goto fail;
  m->tcfg = *ts_model_files_transformer_config (files);
  m->vcfg = *ts_model_files_vq_config (files);
  m->ccfg = *ts_model_files_clip_text_config (files);
  m->scfg = *ts_model_files_scheduler_config (files);
  m->guidance = ts_model_files_index (files)->guidance_scale;
  m->n_params = ts_model_files_n_params (files);
  if (m->guidance <= 0.0)
    m->guidance = 9.0; /* no hint in the folder: the official pipeline's */

  /* ts_model_files_open has checked that the components agree (codebook sizes, CLIP
   * widths, a mask id outside the codebook). */
  /* Loaded and checked against the text encoder's vocabulary by ts_model_files_open. */
  report_progress (params, 0.05, "tokenizer");
  m->tokenizer = ts_model_files_steal_tokenizer (files);

  if (shared) {
    m->be = *shared;
  } else {
    st = ts_backend_new_by_name (&m->be, backend, params->n_threads, err);
    if (st != TS_OK) {
      ts_error_prefix (err, "model: backend '%s'", backend);
      goto fail;
    }
    m->own_backend = true;
    if ((st = ts_backend_set_precision (&m->be, model_precision (params), NULL, err)) != TS_OK) {
      ts_error_prefix (err, "model");
      goto fail;
    }
  }
  m->precision = ts_backend_precision (&m->be);

  /* Cancelling a load: polled before every weight tensor (ts-weights), cleared at the end. */
  ts_weights_set_abort (params->should_abort, params->abort_data);
  if (params->should_abort && params->should_abort (params->abort_data)) {
    ts_error_set (err, TS_ERR_CANCELLED, "model: loading cancelled");
    goto fail;
  }
  report_progress (params, 0.1, "text encoder");
  m->text_encoder = ts_text_encoder_new (&m->be, &m->ccfg,
                                         ts_model_files_checkpoint (files, TS_COMPONENT_TEXT_ENCODER), err);
  if (!m->text_encoder)
    goto fail;
  report_progress (params, 0.3, "transformer");
  m->transformer = ts_transformer_new (&m->be, &m->tcfg,
                                       ts_model_files_checkpoint (files, TS_COMPONENT_TRANSFORMER), err);
  if (!m->transformer)
    goto fail;
  report_progress (params, 0.9, "VQ-VAE");
  m->vq = ts_vq_new (&m->be, &m->vcfg, ts_model_files_checkpoint (files, TS_COMPONENT_VQVAE), err);
  if (!m->vq)
    goto fail;

  /* Every weight now lives in backend memory: unmap the files. */
  ts_weights_set_abort (NULL, NULL);
  ts_model_files_free (files);
  report_progress (params, 1.0, "ready");
  m->stats.load_s = ts_time_now () - t0;
  TS_LOG_I ("model: loaded %s on %s (%s) in %.2f s", dir, ts_backend_name (&m->be),
            ts_precision_name (m->precision), m->stats.load_s);
  return m;

fail:
  ts_weights_set_abort (NULL, NULL);
  ts_model_files_free (files);
  ts_model_free (m);
  return NULL;
}

ts_model *
ts_model_load (const char *dir, const ts_model_load_params *params, ts_error *err)
{
  return model_load (dir, params, NULL, err);
}

ts_model *
ts_model_load_on_backend (const char *dir, const ts_backend *be, bool prefer_fp16, ts_error *err)
{
  ts_model_load_params p;
  ts_model_load_params_init (&p);
  p.prefer_fp16 = prefer_fp16;
  return model_load (dir, &p, be, err);
}

void
ts_model_free (ts_model *m)
{
  if (!m)
    return;
  ts_vq_free (m->vq);
  ts_transformer_free (m->transformer);
  ts_text_encoder_free (m->text_encoder);
  ts_tokenizer_free (m->tokenizer);
  if (m->own_backend)
    ts_backend_free (&m->be);
  free (m->name);
  free (m->dir);
  free (m);
}

const char *
ts_model_name (const ts_model *m)
{
  return m->name;
}

const char *
ts_model_backend_name (const ts_model *m)
{
  return ts_backend_name (&m->be);
}

ts_precision
ts_model_precision (const ts_model *m)
{
  return m->precision;
}

uint32_t
ts_model_vae_scale_factor (const ts_model *m)
{
  return (uint32_t) m->vcfg.vae_scale_factor;
}

int32_t
ts_model_mask_token_id (const ts_model *m)
{
  return (int32_t) m->scfg.mask_token_id;
}

int32_t
ts_model_codebook_size (const ts_model *m)
{
  return m->tcfg.codebook_size;
}

double
ts_model_default_guidance (const ts_model *m)
{
  return m->guidance;
}

void
ts_model_get_stats (const ts_model *m, ts_model_stats *stats)
{
  uint64_t in_use;

  *stats = m->stats;
  ts_backend_device_memory (&m->be, &in_use, &stats->device_memory_peak_bytes);
}

static bool
is_folder (const char *path)
{
  struct stat st;

  return path && path[0] && stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

const char *
ts_default_model_dir (void)
{
  const char *env = getenv ("TESSERA_DEFAULT_MODEL");

  if (env)
    return is_folder (env) ? env : NULL;
  if (is_folder (TS_DEFAULT_MODEL_INSTALLED))
    return TS_DEFAULT_MODEL_INSTALLED;
  if (is_folder (TS_DEFAULT_MODEL_SOURCE))
    return TS_DEFAULT_MODEL_SOURCE;
  return NULL;
}

/* The official pipeline runs the real (downsampling) Meissonic at 1024 px and the
 * no-downsample Monetico at 512 px; use the same defaults. A model trained at another
 * size (the bundled demo model: 128 px) names it in the VQ config's sample_size; the real
 * folders carry diffusers' default 32 there, which is no image size for them, so a
 * sample_size below 64 or one the model cannot take is ignored. */
void
ts_model_default_size (const ts_model *m, uint32_t *width, uint32_t *height)
{
  uint32_t s = m->tcfg.downsample ? 1024 : 512;
  uint32_t trained = m->vcfg.sample_size > 0 ? (uint32_t) m->vcfg.sample_size : 0;

  if (trained >= 64 && ts_model_check_size (m, trained, trained, NULL) == TS_OK)
    s = trained;
  *width = s;
  *height = s;
}

ts_status
ts_model_check_size (const ts_model *m, uint32_t width, uint32_t height, ts_error *err)
{
  return ts_model_size_check (&m->tcfg, &m->vcfg, width, height, err);
}

/* ---- the sampling loop ---- */

/* Clears the per-call timings; the load time stays. */
void
ts_pipeline_stats_reset (ts_model *m)
{
  double load_s = m->stats.load_s;
  memset (&m->stats, 0, sizeof m->stats);
  m->stats.load_s = load_s;
}

/* Floating-point operations of one transformer forward for `batch` images of a grid,
 * counting 2 per multiply-add of the matrix products and attention (the rest is noise). */
static double
transformer_flop (const ts_transformer_config *c, int batch, int grid_h, int grid_w)
{
  double d = c->inner_dim, t = 77, n = (double) grid_h * grid_w;
  double n_img = c->downsample ? n / 4 : n;
  double s = t + n_img;
  double dual = 2 * (t + n_img) * d * d * 4      /* q k v o, both streams */
                + 2 * (t + n_img) * d * 4 * d * 2 /* feed-forward, both streams */
                + 2 * 2 * s * s * d;              /* attention scores and values */
  double single = 2 * s * d * d * 3               /* q k v */
                  + 2 * s * d * 4 * d             /* proj_mlp */
                  + 2 * s * 5 * d * d             /* proj_out */
                  + 2 * 2 * s * s * d;
  double head = 2 * n * d * d + 2 * n * d * c->codebook_size;
  return batch * (c->num_layers * dual + c->num_single_layers * single + head);
}

static ts_status
encode_prompts (ts_model *m, const ts_generate_params *p, int batch, float **pooled,
                float **hidden, bool *truncated, ts_error *err)
{
  const char *texts[2];
  int32_t ids[2 * TS_TOKENIZER_MAX_LENGTH];
  size_t pooled_n = (size_t) batch * m->ccfg.projection_dim;
  size_t hidden_n = (size_t) batch * TS_TOKENIZER_MAX_LENGTH * m->ccfg.hidden_size;
  double t0 = ts_time_now ();
  ts_status st;

  /* Batch order as the reference: [negative ; positive]. */
  texts[0] = batch == 2 ? (p->negative_prompt ? p->negative_prompt : "") : p->prompt;
  texts[1] = p->prompt;
  *truncated = false;
  for (int b = 0; b < batch; b++) {
    bool tr = false;
    st = ts_tokenizer_encode_padded (m->tokenizer, texts[b], ids + b * TS_TOKENIZER_MAX_LENGTH,
                                     &tr, err);
    if (st != TS_OK) {
      ts_error_prefix (err, b == 0 && batch == 2 ? "negative prompt" : "prompt");
      return st;
    }
    if (tr && texts[b] == p->prompt)
      *truncated = true;
    if (tr)
      TS_LOG_W ("tokenizer: the %s is longer than %d tokens and was truncated",
                texts[b] == p->prompt ? "prompt" : "negative prompt", TS_TOKENIZER_MAX_LENGTH);
  }
  m->stats.tokenize_s += ts_time_now () - t0;

  *pooled = malloc (pooled_n * sizeof (float));
  *hidden = malloc (hidden_n * sizeof (float));
  if (!*pooled || !*hidden)
    return ts_error_set (err, TS_ERR_NOMEM, "text encoder: out of memory");
  t0 = ts_time_now ();
  st = ts_text_encoder_forward (m->text_encoder, ids, batch, *pooled, *hidden, NULL, NULL, err);
  m->stats.text_encoder_s += ts_time_now () - t0;
  return st;
}

void
ts_steer_change_init (ts_steer_change *c)
{
  memset (c, 0, sizeof *c);
  c->guidance = NAN;
  c->temperature_start = NAN;
  c->temperature_end = NAN;
}

/* The prompts' embeddings for `batch` rows per image ([negative ; positive] with guidance),
 * repeated for each of n_img images when there are several. */
static ts_status
encode_all (ts_model *m, const ts_generate_params *p, int batch, int n_img, float **pooled,
            float **hidden, float **pooled_rep, float **hidden_rep, bool *truncated, ts_error *err)
{
  size_t pooled_n = (size_t) m->ccfg.projection_dim;
  size_t hidden_n = (size_t) TS_TOKENIZER_MAX_LENGTH * m->ccfg.hidden_size;
  int rows = n_img * batch;
  ts_status st;

  free (*pooled);
  free (*hidden);
  free (*pooled_rep);
  free (*hidden_rep);
  *pooled = *hidden = *pooled_rep = *hidden_rep = NULL;
  if ((st = encode_prompts (m, p, batch, pooled, hidden, truncated, err)) != TS_OK)
    return st;
  if (n_img == 1)
    return TS_OK;
  /* Every image has the same prompts: rows [negative ; positive] per image. */
  *pooled_rep = malloc ((size_t) rows * pooled_n * sizeof **pooled_rep);
  *hidden_rep = malloc ((size_t) rows * hidden_n * sizeof **hidden_rep);
  if (!*pooled_rep || !*hidden_rep)
    return ts_error_set (err, TS_ERR_NOMEM, "generate: out of memory for %d images", n_img);
  for (int k = 0; k < n_img; k++) {
    memcpy (*pooled_rep + (size_t) k * batch * pooled_n, *pooled,
            (size_t) batch * pooled_n * sizeof **pooled);
    memcpy (*hidden_rep + (size_t) k * batch * hidden_n, *hidden,
            (size_t) batch * hidden_n * sizeof **hidden);
  }
  return TS_OK;
}

/* A steering change's numbers, checked as the run's own are. */
static ts_status
steer_apply (ts_generate_params *q, const ts_steer_change *c, int step, ts_error *err)
{
  double g = isnan (c->guidance) ? q->guidance : c->guidance;
  double t0 = isnan (c->temperature_start) ? q->temperature_start : c->temperature_start;
  double t1 = isnan (c->temperature_end) ? q->temperature_end : c->temperature_end;

  if (!isfinite (g) || !isfinite (t0) || !isfinite (t1) || g > TS_GUIDANCE_MAX || t0 < 0 || t1 < 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "generate: steering at step %d: guidance %g or temperatures %g -> %g "
                         "out of range",
                         step + 1, g, t0, t1);
  q->guidance = g;
  q->temperature_start = t0;
  q->temperature_end = t1;
  if (c->prompt)
    q->prompt = c->prompt;
  if (c->negative_prompt)
    q->negative_prompt = c->negative_prompt;
  return TS_OK;
}

static bool
abort_cb (void *user_data)
{
  const ts_generate_params *p = user_data;
  return p->should_abort && p->should_abort (p->abort_data);
}

/* The grids of the sample op, each n_tokens 32-bit values in one backend buffer. */
enum { GRID_SAMPLE, GRID_CODES, GRID_CONFIDENCE, GRID_DRAW_CODES, GRID_DRAW_NOISE, GRID_COUNT };

static ts_ref
grid_ref (ts_buffer *grids, int which, int n_tok)
{
  return ts_ref_at (grids, (size_t) which * n_tok * sizeof (int32_t));
}

/* One scheduler step: the per-token part on the backend (ts_op_sample, on the logits where
 * the transformer left them), codes and confidences back to the host, then the re-masking
 * (ts_sampler_remask). tokens is updated in place; predicted and confidence receive the
 * op's outputs; noise is host scratch for recorded uniforms turned into Gumbel noise. */
static ts_status
sample_step (ts_model *m, const ts_generate_params *p, const ts_pipeline_run_args *run, int step,
             uint64_t seed, ts_ref logits, int batch, ts_buffer *grids, int n_tok, int32_t *tokens,
             int32_t *predicted, float *confidence, float *noise, ts_error *err)
{
  const ts_backend *be = &m->be;
  const size_t grid_bytes = (size_t) n_tok * sizeof (int32_t);
  ts_sampler_draws draws = { .kind = TS_SAMPLER_DRAWS_RNG, .seed = seed };
  ts_sample_args sa = {
    .logits = logits,
    .n_rows = batch,
    .guidance_scale = (float) p->guidance,
    .sample = grid_ref (grids, GRID_SAMPLE, n_tok),
    .mask_token_id = (int32_t) m->scfg.mask_token_id,
    .codebook_size = m->tcfg.codebook_size,
    .n_tokens = n_tok,
    .temperature = ts_sampler_temperature ((float) p->temperature_start,
                                           (float) p->temperature_end, step, p->steps),
    .noise = step < p->steps - 1,
    .step_index = (uint32_t) step,
    .codes = grid_ref (grids, GRID_CODES, n_tok),
    .confidence = grid_ref (grids, GRID_CONFIDENCE, n_tok),
  };
  ts_sampler_remask_args ra = {
    .codebook_size = m->tcfg.codebook_size,
    .n_tokens = n_tok,
    .mask_token_id = (int32_t) m->scfg.mask_token_id,
    .codes = predicted,
    .confidence = confidence,
    .step_index = step,
    .n_steps = p->steps,
    .schedule = run->linear_schedule ? TS_MASKING_LINEAR : m->scfg.masking_schedule,
    .starting_mask_ratio = run->starting_mask_ratio,
    .prev_sample = tokens,
  };
  ts_status st;

  if (run->draws && (st = run->draws (run->draws_data, step, &draws, err)) != TS_OK)
    return st;
  if (draws.kind == TS_SAMPLER_DRAWS_RECORDED) {
    const float *g = draws.gumbel;
    if (!draws.multinomial || (sa.noise && !draws.gumbel && !draws.uniform))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: recorded draws need "
                           "multinomial draws and gumbel or uniform noise");
    sa.draw_codes = grid_ref (grids, GRID_DRAW_CODES, n_tok);
    if ((st = ts_buffer_upload (be, sa.draw_codes, draws.multinomial, grid_bytes, err)) != TS_OK)
      return st;
    if (sa.noise) {
      if (!g) {
        for (int i = 0; i < n_tok; i++)
          noise[i] = ts_sampler_gumbel (draws.uniform[i]);
        g = noise;
      }
      sa.draw_gumbel = grid_ref (grids, GRID_DRAW_NOISE, n_tok);
      if ((st = ts_buffer_upload (be, sa.draw_gumbel, g, grid_bytes, err)) != TS_OK)
        return st;
    }
  } else {
    sa.seed = draws.seed;
    sa.image_index = draws.image_index;
  }
  for (int i = 0; i < n_tok; i++)
    ra.n_unknown += tokens[i] == sa.mask_token_id;
  ts_backend_scope_set (be, "sampler", -1);
  if ((st = ts_buffer_upload (be, sa.sample, tokens, grid_bytes, err)) != TS_OK
      || (st = ts_op_sample (be, &sa, err)) != TS_OK
      || (st = ts_buffer_download (be, sa.codes, predicted, grid_bytes, err)) != TS_OK
      || (st = ts_buffer_download (be, sa.confidence, confidence, grid_bytes, err)) != TS_OK)
    return st;
  return ts_sampler_remask (&ra, NULL, err);
}

/* Every token's probability of its predicted code at a step, recovered from the sample
 * op's confidence (log p + temperature * Gumbel noise) by taking the seed's noise back out.
 * With recorded draws the noise is not the seed's, and the probability is NaN. */
static void
step_probabilities (const ts_generate_params *p, const ts_pipeline_run_args *run, int step,
                    uint64_t seed, const float *conf, int n_tok, float *prob)
{
  float temperature = ts_sampler_temperature ((float) p->temperature_start,
                                              (float) p->temperature_end, step, p->steps);
  bool noise = step < p->steps - 1;

  for (int i = 0; i < n_tok; i++) {
    if (run->draws) {
      prob[i] = NAN;
      continue;
    }
    float g = noise ? ts_sampler_gumbel (ts_rng_uniform (seed, 0, (uint32_t) step,
                                                         TS_RNG_PURPOSE_GUMBEL, (uint32_t) i))
                    : 0.0f;
    prob[i] = expf (conf[i] - temperature * g);
  }
}

/* The trajectory of one image after a step: tokens marked UINT16_MAX (masked on entry)
 * that the step fixed get the step's 1-based number and the probability of their code
 * (step_prob); tokens still masked lose the mark. */
static void
record_reveals (int step, const int32_t *tok, const float *step_prob, int32_t mask_id, int n_tok,
                uint16_t *reveal, float *prob)
{
  for (int i = 0; i < n_tok; i++) {
    if (reveal[i] != UINT16_MAX)
      continue;
    if (tok[i] == mask_id) {
      reveal[i] = 0;
      continue;
    }
    reveal[i] = (uint16_t) (step + 1);
    prob[i] = step_prob[i];
  }
}

ts_status
ts_pipeline_run (ts_model *m, const ts_generate_params *p, const ts_pipeline_run_args *run,
                 ts_result *out, ts_error *err)
{
  uint32_t width = p->width, height = p->height;
  int f = m->vcfg.vae_scale_factor;
  int grid_h, grid_w, n_tok, batch, rows;
  int n_img = run->n_images > 0 ? run->n_images : 1;
  int32_t mask_id = (int32_t) m->scfg.mask_token_id;
  float *pooled = NULL, *hidden = NULL, *pooled_rep = NULL, *hidden_rep = NULL;
  float *confidence = NULL, *noise = NULL, *step_prob = NULL;
  int32_t *tokens = NULL, *model_in = NULL, *predicted = NULL;
  uint16_t *reveal = NULL;
  float *reveal_prob = NULL;
  ts_buffer *grids = NULL;
  float *image_f = NULL;
  bool truncated = false;
  ts_abort abort_hook = { abort_cb, (void *) p };
  ts_status st = TS_OK;
  double t0;
  /* The parameters in force: steering changes them between steps. */
  ts_generate_params steered = *p;

  memset (out, 0, (size_t) n_img * sizeof *out);
  if (!p->prompt)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "generate: no prompt (use \"\" for none)");
  if (p->steps < 1 || p->steps > 1000)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "generate: steps must be 1 to 1000, not %d",
                         p->steps);
  if (!isfinite (p->guidance) || !isfinite (p->temperature_start) || !isfinite (p->temperature_end)
      || !isfinite (p->aesthetic_score))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "generate: guidance, temperatures and "
                                                  "aesthetic score must be finite numbers");
  if (p->guidance > TS_GUIDANCE_MAX)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "generate: guidance scale %g is out of range (at most %g)", p->guidance,
                         TS_GUIDANCE_MAX);
  if (width == 0 && height == 0)
    ts_model_default_size (m, &width, &height);
  if ((st = ts_model_check_size (m, width, height, err)) != TS_OK)
    return st;
  /* The estimate the CLI checks before loading, so that the app and API callers get a named
   * refusal rather than an allocation failure deep in a stage. With 16-bit weights, the
   * least any backend holds: a size refused here cannot run anywhere. */
  if ((st = ts_memory_check (ts_estimate_memory (&m->tcfg, &m->vcfg, &m->ccfg, m->n_params, width,
                                                 height, TS_DTYPE_F16),
                             width, height, err)) != TS_OK)
    return st;
  if (p->finish_at < 0 || p->finish_at > p->steps)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "generate: finish-at step %d outside 1..%d",
                         p->finish_at, p->steps);
  if (run->start_step < 0 || run->start_step >= p->steps)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "generate: start step %d outside 0..%d",
                         run->start_step, p->steps - 1);
  if (p->finish_at > 0 && p->finish_at <= run->start_step)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "generate: finish-at step %d comes before the first step that runs (%d)",
                         p->finish_at, run->start_step + 1);
  if (n_img > 1 && (run->draws || run->step_done || run->logits_done || run->image_float))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "generate: the replay hooks take one image");

  p = &steered;
  grid_h = (int) height / f;
  grid_w = (int) width / f;
  n_tok = grid_h * grid_w;
  batch = p->guidance > 1.0 ? 2 : 1;
  rows = n_img * batch;
  m->stats.n_transformer_calls = 0;
  m->stats.transformer_batch = rows;
  m->stats.transformer_flop = transformer_flop (&m->tcfg, rows, grid_h, grid_w);
  /* The backend polls the abort hook inside long ops too (attention at a large size runs
   * for minutes), so that a cancel takes effect within a second; cleared at `out`. */
  ts_backend_set_abort (&m->be, abort_cb, (void *) p);

  tokens = malloc ((size_t) n_img * n_tok * sizeof *tokens);
  /* Room for guidance on every image: steering may turn it on. */
  model_in = malloc ((size_t) n_img * 2 * n_tok * sizeof *model_in);
  predicted = malloc ((size_t) n_img * n_tok * sizeof *predicted);
  confidence = malloc ((size_t) n_img * n_tok * sizeof *confidence);
  noise = malloc ((size_t) n_tok * sizeof *noise);
  step_prob = malloc ((size_t) n_tok * sizeof *step_prob);
  reveal = calloc ((size_t) n_img * n_tok, sizeof *reveal);
  reveal_prob = malloc ((size_t) n_img * n_tok * sizeof *reveal_prob);
  if (!tokens || !model_in || !predicted || !confidence || !noise || !step_prob || !reveal
      || !reveal_prob) {
    st = ts_error_set (err, TS_ERR_NOMEM, "generate: out of memory for a %dx%d token grid",
                       grid_w, grid_h);
    goto out;
  }
  /* The sample op's grids on the backend, GRID_* below: the logits stay where the
   * transformer computed them and only codes and confidences come back. The images of a
   * batch take turns with them. */
  grids = ts_buffer_new (&m->be, (size_t) GRID_COUNT * n_tok * sizeof (int32_t), err);
  if (!grids) {
    st = err ? err->code : TS_ERR_NOMEM;
    ts_error_prefix (err, "generate: sampler grids");
    goto out;
  }
  if (run->init_tokens)
    memcpy (tokens, run->init_tokens, (size_t) n_img * n_tok * sizeof *tokens);
  else
    for (int i = 0; i < n_img * n_tok; i++)
      tokens[i] = mask_id;
  for (int i = 0; i < n_img * n_tok; i++)
    reveal_prob[i] = NAN;

  if (abort_cb ((void *) p)) {
    st = ts_error_set (err, TS_ERR_CANCELLED, "generate: cancelled");
    goto out;
  }
  if ((st = encode_all (m, p, batch, n_img, &pooled, &hidden, &pooled_rep, &hidden_rep, &truncated,
                        err)) != TS_OK)
    goto out;

  for (int step = run->start_step; step < p->steps; step++) {
    ts_transformer_forward_args fa;
    ts_ref logits;
    double step_t0 = ts_time_now ();

    if (p->steer && step > run->start_step) {
      ts_steer_change change;
      bool truncated_now = false;

      ts_steer_change_init (&change);
      if (p->steer (p->steer_data, step, &change)) {
        if ((st = steer_apply (&steered, &change, step, err)) != TS_OK)
          goto out;
        batch = p->guidance > 1.0 ? 2 : 1;
        rows = n_img * batch;
        m->stats.transformer_batch = rows;
        m->stats.transformer_flop = transformer_flop (&m->tcfg, rows, grid_h, grid_w);
        if ((st = encode_all (m, p, batch, n_img, &pooled, &hidden, &pooled_rep, &hidden_rep,
                              &truncated_now, err)) != TS_OK)
          goto out;
        truncated = truncated || truncated_now;
      }
    }
    if (abort_cb ((void *) p)) {
      st = ts_error_set (err, TS_ERR_CANCELLED, "generate: cancelled before step %d of %d",
                         step + 1, p->steps);
      goto out;
    }
    for (int k = 0; k < n_img; k++)
      for (int b = 0; b < batch; b++)
        memcpy (model_in + (size_t) (k * batch + b) * n_tok, tokens + (size_t) k * n_tok,
                (size_t) n_tok * sizeof *tokens);

    memset (&fa, 0, sizeof fa);
    fa.tokens = model_in;
    fa.batch = rows;
    fa.grid_h = grid_h;
    fa.grid_w = grid_w;
    fa.encoder_hidden_states = n_img > 1 ? hidden_rep : hidden;
    fa.text_len = TS_TOKENIZER_MAX_LENGTH;
    fa.pooled_projections = n_img > 1 ? pooled_rep : pooled;
    fa.micro_conds[0] = (float) width;
    fa.micro_conds[1] = (float) height;
    fa.micro_conds[2] = (float) p->crop_top;
    fa.micro_conds[3] = (float) p->crop_left;
    fa.micro_conds[4] = (float) p->aesthetic_score;
    fa.timestep = ts_sampler_timestep (step, p->steps);
    fa.logits_ref = &logits;
    t0 = ts_time_now ();
    st = ts_transformer_forward (m->transformer, &fa, NULL, &abort_hook, err);
    /* Wait here so that the device's transformer time is not counted as sampling. */
    if (st == TS_OK)
      st = ts_backend_sync (&m->be, err);
    t0 = ts_time_now () - t0; /* now the forward's duration */
    m->stats.transformer_s += t0;
    if (m->stats.transformer_first_s == 0.0)
      m->stats.transformer_first_s = t0;
    m->stats.n_transformer_calls++;
    if (st != TS_OK)
      goto out;
    if (run->logits_done
        && (st = run->logits_done (run->draws_data, step, &m->be, logits, batch,
                                   m->tcfg.codebook_size, n_tok, err)) != TS_OK)
      goto out;

    for (int k = 0; k < n_img; k++) {
      int32_t *tok = tokens + (size_t) k * n_tok, *pred = predicted + (size_t) k * n_tok;
      float *conf = confidence + (size_t) k * n_tok;
      int n_masked = 0;

      /* Which tokens are masked on entry: those revealed by this step get its number. */
      for (int i = 0; i < n_tok; i++)
        reveal[(size_t) k * n_tok + i] = tok[i] == mask_id ? UINT16_MAX : reveal[(size_t) k * n_tok + i];

      t0 = ts_time_now ();
      /* Image k has seed seed + k and draws exactly what a run of its own would. */
      st = sample_step (m, p, run, step, p->seed + (uint64_t) k,
                        ts_ref_f32 (logits, (int64_t) k * batch * m->tcfg.codebook_size * n_tok),
                        batch, grids, n_tok, tok, pred, confidence + (size_t) k * n_tok, noise,
                        err);
      m->stats.sampler_s += ts_time_now () - t0;
      if (st != TS_OK)
        goto out;

      /* "Finish now" at this step: every token still masked takes the step's prediction. */
      if (step + 1 == p->finish_at)
        for (int i = 0; i < n_tok; i++)
          if (tok[i] == mask_id)
            tok[i] = pred[i];
      for (int i = 0; i < n_tok; i++)
        n_masked += tok[i] == mask_id;
      step_probabilities (p, run, step, p->seed + (uint64_t) k, conf, n_tok, step_prob);
      record_reveals (step, tok, step_prob, mask_id, n_tok, reveal + (size_t) k * n_tok,
                      reveal_prob + (size_t) k * n_tok);
      if (run->step_done && (st = run->step_done (run->draws_data, step, pred, tok, err)) != TS_OK)
        goto out;
      if (p->on_step) {
        ts_step_info info = {
          .step = step,
          .n_steps = p->steps,
          .grid_h = grid_h,
          .grid_w = grid_w,
          .tokens = tok,
          .predicted = pred,
          .confidence = conf,
          .probability = step_prob,
          .n_masked = n_masked,
          .mask_token_id = mask_id,
          .seconds = ts_time_now () - step_t0,
          .image = run->first_image + k,
        };
        p->on_step (p->step_data, &info);
      }
    }
    if (step + 1 == p->finish_at)
      break;
  }

  /* The sampling loop's buffers and the transformer's activations are done with: give
   * them back before the VQ decode needs its own. */
  ts_buffer_free (&m->be, grids);
  grids = NULL;
  ts_transformer_trim (m->transformer);

  for (int k = 0; k < n_img; k++) {
    ts_result *r = out + k;

    r->grid_h = grid_h;
    r->grid_w = grid_w;
    r->prompt_truncated = truncated;
    r->tokens = malloc ((size_t) n_tok * sizeof *r->tokens);
    if (!r->tokens) {
      st = ts_error_set (err, TS_ERR_NOMEM, "generate: out of memory");
      goto out;
    }
    memcpy (r->tokens, tokens + (size_t) k * n_tok, (size_t) n_tok * sizeof *tokens);
    r->reveal_step = malloc ((size_t) n_tok * sizeof *r->reveal_step);
    r->reveal_prob = malloc ((size_t) n_tok * sizeof *r->reveal_prob);
    if (!r->reveal_step || !r->reveal_prob) {
      st = ts_error_set (err, TS_ERR_NOMEM, "generate: out of memory");
      goto out;
    }
    memcpy (r->reveal_step, reveal + (size_t) k * n_tok, (size_t) n_tok * sizeof *reveal);
    memcpy (r->reveal_prob, reveal_prob + (size_t) k * n_tok, (size_t) n_tok * sizeof *reveal_prob);
    if (!run->decode)
      continue;
    if (!image_f)
      image_f = malloc ((size_t) 3 * width * height * sizeof *image_f);
    r->image = ts_image_new (width, height, err);
    if (!image_f || !r->image) {
      st = ts_error_set (err, TS_ERR_NOMEM, "decode: out of memory for a %ux%u image", width,
                         height);
      goto out;
    }
    if (abort_cb ((void *) p)) {
      st = ts_error_set (err, TS_ERR_CANCELLED, "generate: cancelled before the VQ decode");
      goto out;
    }
    t0 = ts_time_now ();
    st = ts_vq_decode (m->vq, r->tokens, 1, grid_h, grid_w, image_f, NULL, err);
    ts_vq_trim (m->vq);
    m->stats.vq_decode_s += ts_time_now () - t0;
    if (st != TS_OK
        || (st = ts_vq_check_finite (image_f, 1, (int) height, (int) width, err)) != TS_OK)
      goto out;
    ts_vq_to_uint8 (image_f, 1, (int) height, (int) width, r->image->pixels);
    if (run->image_float)
      memcpy (run->image_float, image_f, (size_t) 3 * width * height * sizeof *image_f);
  }

out:
  ts_backend_set_abort (&m->be, NULL, NULL);
  if (st != TS_OK)
    for (int k = 0; k < n_img; k++)
      ts_result_free (out + k);
  free (image_f);
  if (grids)
    ts_buffer_free (&m->be, grids);
  free (reveal_prob);
  free (reveal);
  free (noise);
  free (step_prob);
  free (confidence);
  free (predicted);
  free (model_in);
  free (tokens);
  free (hidden_rep);
  free (pooled_rep);
  free (hidden);
  free (pooled);
  return st;
}

/* How many images of a batch go through the transformer together: one on a backend whose
 * ops round differently with the batch size (the CPU fast path's GEMMs), as batching there
 * would break the identity with single runs; else as many as keep their activations (by
 * the same count as ts_model_info_estimate_memory) under a quarter of the memory limit
 * (ts_memory_limit), at most 8 and at least 1. */
static int
images_per_forward (const ts_model *m, uint32_t width, uint32_t height, int n)
{
  const ts_transformer_config *t = &m->tcfg;
  double h = (double) height / m->vcfg.vae_scale_factor, w = (double) width / m->vcfg.vae_scale_factor;
  double seq = TS_TOKENIZER_MAX_LENGTH + (t->downsample ? (h / 2) * (w / 2) : h * w);
  double per_image = 4.0 * 2.0 * seq * t->inner_dim * 16.0 + 4.0 * 2.0 * 2.0 * t->codebook_size * h * w;
  double budget = (double) ts_memory_limit (NULL) / 4.0;
  int k = per_image > 0 ? (int) (budget / per_image) : 1;

  if (!ts_backend_batch_invariant (&m->be))
    return 1;
  if (k > 8)
    k = 8;
  if (k > n)
    k = n;
  return k < 1 ? 1 : k;
}

ts_status
ts_model_generate_batch (ts_model *m, const ts_generate_params *p, int n, ts_result *out,
                         ts_error *err)
{
  ts_pipeline_run_args run = { .decode = true, .starting_mask_ratio = 1.0f };
  ts_generate_params q;
  uint32_t width, height;
  int chunk;
  ts_status st = TS_OK;

  if (!m || !p || !out || n < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "generate: missing argument");
  memset (out, 0, (size_t) n * sizeof *out);
  width = p->width;
  height = p->height;
  if (width == 0 && height == 0)
    ts_model_default_size (m, &width, &height);
  chunk = images_per_forward (m, width, height, n);
  ts_pipeline_stats_reset (m);
  q = *p;
  for (int first = 0; first < n && st == TS_OK; first += chunk) {
    int calls = m->stats.n_transformer_calls;
    run.n_images = n - first < chunk ? n - first : chunk;
    run.first_image = first;
    q.seed = p->seed + (uint64_t) first;
    st = ts_pipeline_run (m, &q, &run, out + first, err);
    /* The times add up over the chunks; the call count restarts in each. */
    m->stats.n_transformer_calls += calls;
  }
  if (st != TS_OK)
    for (int k = 0; k < n; k++)
      ts_result_free (out + k);
  return st;
}

ts_status
ts_model_generate (ts_model *m, const ts_generate_params *p, ts_result *out, ts_error *err)
{
  ts_pipeline_run_args run = { .decode = true, .starting_mask_ratio = 1.0f };

  if (!m || !p || !out)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "generate: missing argument");
  ts_pipeline_stats_reset (m);
  return ts_pipeline_run (m, p, &run, out, err);
}

ts_image *
ts_model_decode (ts_model *m, const int32_t *tokens, int grid_h, int grid_w, ts_error *err)
{
  int f = m->vcfg.vae_scale_factor;
  float *image_f;
  ts_image *image;
  ts_status st;

  if (grid_h <= 0 || grid_w <= 0 || grid_h * f > 8192 || grid_w * f > 8192) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "decode: bad token grid %dx%d", grid_w, grid_h);
    return NULL;
  }
  image_f = malloc ((size_t) 3 * grid_h * grid_w * f * f * sizeof *image_f);
  image = ts_image_new ((uint32_t) (grid_w * f), (uint32_t) (grid_h * f), err);
  if (!image_f || !image) {
    ts_error_set (err, TS_ERR_NOMEM, "decode: out of memory");
    goto fail;
  }
  st = ts_vq_decode (m->vq, tokens, 1, grid_h, grid_w, image_f, NULL, err);
  ts_vq_trim (m->vq);
  if (st != TS_OK || ts_vq_check_finite (image_f, 1, grid_h * f, grid_w * f, err) != TS_OK)
    goto fail;
  ts_vq_to_uint8 (image_f, 1, grid_h * f, grid_w * f, image->pixels);
  free (image_f);
  return image;

fail:
  free (image_f);
  ts_image_free (image);
  return NULL;
}

ts_status
ts_model_encode (ts_model *m, const ts_image *image, int32_t *tokens, ts_error *err)
{
  size_t n = (size_t) image->width * image->height;
  float *x = malloc (3 * n * sizeof *x);
  double t0 = ts_time_now ();
  ts_status st;

  if (!x)
    return ts_error_set (err, TS_ERR_NOMEM, "encode: out of memory");
  /* RGB8 HWC → [0, 1] NCHW, as VaeImageProcessor.preprocess with do_normalize=False. */
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 3; c++)
      x[c * n + i] = (float) image->pixels[3 * i + c] / 255.0f;
  st = ts_vq_encode (m->vq, x, 1, (int) image->height, (int) image->width, tokens, NULL, NULL, err);
  ts_vq_trim (m->vq);
  m->stats.vq_encode_s += ts_time_now () - t0;
  free (x);
  return st;
}

ts_masking_schedule
ts_pipeline_schedule (const ts_model *m)
{
  return m->scfg.masking_schedule;
}

uint32_t
ts_pipeline_size_step (const ts_model *m)
{
  return (uint32_t) m->vcfg.vae_scale_factor * (m->tcfg.downsample ? 2u : 1u);
}

void
ts_pipeline_set_abort (ts_model *m, const ts_generate_params *p)
{
  ts_backend_set_abort (&m->be, p ? abort_cb : NULL, (void *) p);
}

const ts_backend *
ts_pipeline_backend (const ts_model *m)
{
  return &m->be;
}
