/* SPDX-License-Identifier: MIT
 *
 * ts-random-model — ts_make_random_model: a full diffusers-layout Meissonic folder with
 * seeded random weights, for benchmarks at the real size (`tessera-cli make-random-model`).
 * The configs are parsed by the stages' config modules (so a folder this writes is one the
 * loader accepts), the tensor set is exactly their expected-tensor tables, the weights are
 * streamed through ts-st-writer chunk by chunk (gigabytes never sit in memory) and their
 * values come from the Philox stream described in ts-random-model.h. Config and tokenizer
 * files are copied byte for byte.
 */
#include "devkit/ts-random-model.h"

#include "core/ts-common.h"
#include "core/ts-file.h"
#include "core/ts-rng.h"
#include "model/ts-safetensors.h"
#include "stages/ts-sampler-config.h"
#include "stages/ts-text-encoder-config.h"
#include "stages/ts-transformer-config.h"
#include "stages/ts-vq-config.h"
#include "devkit/ts-st-writer.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#define RM_PATH_MAX 4096
#define RM_PI 3.14159265358979323846f

/* ---- values ---- */

static inline void
box_muller (uint32_t wu, uint32_t wv, float *z0, float *z1)
{
  float u = (float) ((wu >> 8) + 1) * 0x1p-24f;
  float v = (float) (wv >> 8) * 0x1p-24f;
  float r = sqrtf (-2.0f * logf (u));
  float a = 2.0f * RM_PI * v;

  *z0 = r * cosf (a);
  *z1 = r * sinf (a);
}

void
ts_random_model_fill_normal (uint64_t seed, ts_component component, uint32_t tensor,
                             uint64_t first, size_t n, float mean, float std, float *dst)
{
  const uint32_t key[2] = { (uint32_t) seed, (uint32_t) (seed >> 32) };
  uint64_t i = first;
  const uint64_t end = first + n;

  while (i < end) {
    const uint64_t block = i >> 2;
    const uint32_t ctr[4] = { (uint32_t) block, (uint32_t) (block >> 32), tensor,
                              TS_RANDOM_MODEL_PURPOSE + (uint32_t) component };
    uint32_t w[4];
    float z[4];

    ts_philox4x32_10 (ctr, key, w);
    box_muller (w[0], w[1], &z[0], &z[1]);
    box_muller (w[2], w[3], &z[2], &z[3]);
    for (unsigned k = (unsigned) (i & 3); k < 4 && i < end; k++, i++)
      dst[i - first] = mean + std * z[k];
  }
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t ls = strlen (s), lx = strlen (suffix);
  return ls >= lx && memcmp (s + ls - lx, suffix, lx) == 0;
}

void
ts_random_model_init_rule (ts_component component, const ts_tensor_spec *spec, float *mean,
                           float *std)
{
  double fan_in = 1.0, s;

  *mean = 0.0f;
  if (spec->n_dims == 1) {
    *std = 0.02f;
    if (!ends_with (spec->name, ".bias"))
      *mean = 1.0f;
    return;
  }
  if (component == TS_COMPONENT_VQVAE && strcmp (spec->name, "quantize.embedding.weight") == 0) {
    *std = 1.0f;
    return;
  }
  if (spec->n_dims == 2 && strstr (spec->name, "embedding")) {
    *std = 0.5f;
    return;
  }
  for (int d = 1; d < spec->n_dims; d++)
    fan_in *= (double) spec->shape[d];
  s = 0.8 / sqrt (fan_in);
  *std = (float) (s < 0.02 ? 0.02 : s > 0.2 ? 0.2 : s);
}

/* ---- writing one checkpoint ---- */

/* buf (RM_PATH_MAX bytes) = a "/" b, or a alone when b is NULL. */
static ts_status
path_join (char *buf, const char *a, const char *b, ts_error *err)
{
  int n = b ? snprintf (buf, RM_PATH_MAX, "%s/%s", a, b) : snprintf (buf, RM_PATH_MAX, "%s", a);
  if (n < 0 || n >= RM_PATH_MAX)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: path too long", a);
  return TS_OK;
}

typedef struct {
  const char *name; /* borrowed from the spec list */
  uint32_t index;   /* in the spec list (module order): the stream's tensor number */
  float mean, std;
} rm_tensor;

typedef struct {
  uint64_t seed;
  ts_component component;
  rm_tensor *tensors; /* sorted by name */
  size_t n_tensors;
  size_t cursor;      /* the writer asks in name order: usually tensors[cursor] */
  char label[64];     /* "transformer/diffusion_pytorch_model.safetensors" */
  ts_progress_fn progress;
  void *progress_data;
  uint64_t bytes_done, bytes_total;
  double last_reported;
} rm_writer;

static int
cmp_rm_tensor (const void *a, const void *b)
{
  return strcmp (((const rm_tensor *) a)->name, ((const rm_tensor *) b)->name);
}

static const rm_tensor *
rm_writer_find (rm_writer *w, const char *name)
{
  const rm_tensor key = { .name = name };
  const rm_tensor *t;

  for (size_t c = w->cursor; c < w->cursor + 2 && c < w->n_tensors; c++)
    if (strcmp (w->tensors[c].name, name) == 0) {
      w->cursor = c;
      return &w->tensors[c];
    }
  t = bsearch (&key, w->tensors, w->n_tensors, sizeof *w->tensors, cmp_rm_tensor);
  TS_ASSERT (t != NULL); /* the writer only asks for tensors it was given */
  w->cursor = (size_t) (t - w->tensors);
  return t;
}

static void
rm_writer_report (rm_writer *w, bool force)
{
  char what[160];
  double fraction;

  if (!w->progress)
    return;
  fraction = w->bytes_total ? (double) w->bytes_done / (double) w->bytes_total : 1.0;
  if (!force && fraction - w->last_reported < 0.002)
    return;
  w->last_reported = fraction;
  snprintf (what, sizeof what, "%s (%.0f of %.0f MB)", w->label, (double) w->bytes_done / 1e6,
            (double) w->bytes_total / 1e6);
  w->progress (w->progress_data, fraction, what);
}

static void
rm_writer_fill (void *user_data, const char *name, ts_dtype dtype, size_t first, size_t n,
                void *dst)
{
  rm_writer *w = user_data;
  const rm_tensor *t = rm_writer_find (w, name);
  const size_t esize = ts_dtype_size (dtype);
  unsigned char *out = dst;
  float buf[1024];
  size_t m;

  for (size_t done = 0; done < n; done += m) {
    m = n - done < 1024 ? n - done : 1024;
    ts_random_model_fill_normal (w->seed, w->component, t->index, (uint64_t) (first + done), m,
                                 t->mean, t->std, buf);
    switch (dtype) {
    case TS_DTYPE_F32:
      memcpy (out + done * esize, buf, m * sizeof (float));
      break;
    case TS_DTYPE_F16:
    case TS_DTYPE_BF16:
      for (size_t k = 0; k < m; k++) {
        uint16_t h = dtype == TS_DTYPE_F16 ? ts_f32_to_f16 (buf[k]) : ts_f32_to_bf16 (buf[k]);
        memcpy (out + (done + k) * esize, &h, sizeof h);
      }
      break;
    case TS_DTYPE_BOOL:
    case TS_DTYPE_U8:
    case TS_DTYPE_I8:
    case TS_DTYPE_F8_E4M3:
    case TS_DTYPE_F8_E5M2:
    case TS_DTYPE_I16:
    case TS_DTYPE_U16:
    case TS_DTYPE_I32:
    case TS_DTYPE_U32:
    case TS_DTYPE_I64:
    case TS_DTYPE_U64:
    case TS_DTYPE_F64:
    case TS_DTYPE_COUNT:
      TS_ASSERT (!"ts_make_random_model checks the dtype before writing");
      break;
    }
  }
  w->bytes_done += (uint64_t) n * esize;
  rm_writer_report (w, false);
}

/* Writes OUT/<folder>/<file> with the component's expected tensors. */
static ts_status
write_checkpoint (const char *out_dir, const char *folder, const char *file,
                  ts_component component, const ts_tensor_list *specs, ts_dtype dtype,
                  rm_writer *w, ts_error *err)
{
  ts_st_writer_tensor *wt = NULL;
  char path[RM_PATH_MAX], seed_text[32];
  const char *metadata[] = { "format", "pt", "tessera.random_seed", seed_text, NULL };
  ts_status status = TS_OK;

  snprintf (seed_text, sizeof seed_text, "%" PRIu64, w->seed);
  snprintf (w->label, sizeof w->label, "%s/%s", folder, file);
  if ((status = path_join (path, out_dir, w->label, err)) != TS_OK)
    return status;
  if (specs->n > UINT32_MAX)
    return ts_error_set (err, TS_ERR_UNSUPPORTED, "%s: too many tensors", path);

  wt = calloc (specs->n ? specs->n : 1, sizeof *wt);
  w->tensors = calloc (specs->n ? specs->n : 1, sizeof *w->tensors);
  if (!wt || !w->tensors) {
    status = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  for (size_t i = 0; i < specs->n; i++) {
    const ts_tensor_spec *s = &specs->items[i];
    wt[i].name = s->name;
    wt[i].dtype = dtype;
    wt[i].n_dims = s->n_dims;
    for (int d = 0; d < s->n_dims; d++)
      wt[i].shape[d] = s->shape[d];
    w->tensors[i].name = s->name;
    w->tensors[i].index = (uint32_t) i;
    ts_random_model_init_rule (component, s, &w->tensors[i].mean, &w->tensors[i].std);
  }
  qsort (w->tensors, specs->n, sizeof *w->tensors, cmp_rm_tensor);
  w->n_tensors = specs->n;
  w->cursor = 0;
  w->component = component;
  rm_writer_report (w, true);
  status = ts_st_write_file (path, wt, specs->n, metadata, rm_writer_fill, w, err);

fail:
  free (w->tensors);
  w->tensors = NULL;
  w->n_tensors = 0;
  free (wt);
  return status;
}

/* ---- folders and config files ---- */

static bool
is_regular_file (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

static bool
is_directory (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

/* mkdir -p. */
static ts_status
make_dirs (const char *path, ts_error *err)
{
  char buf[RM_PATH_MAX];
  size_t len = strlen (path);

  if (len == 0 || len >= sizeof buf)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "'%s': not a usable folder name", path);
  memcpy (buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    buf[i] = '\0';
    if (mkdir (buf, 0755) != 0 && errno != EEXIST)
      return ts_error_set (err, TS_ERR_IO, "%s: cannot create folder: %s", buf, strerror (errno));
    if (!is_directory (buf))
      return ts_error_set (err, TS_ERR_IO, "%s: exists and is not a folder", buf);
    buf[i] = i < len ? '/' : '\0';
  }
  return TS_OK;
}

static ts_status
copy_file (const char *src, const char *dst, ts_error *err)
{
  FILE *in = NULL, *out = NULL;
  struct stat st_src, st_dst;
  char buf[1 << 16];
  size_t n;
  ts_status status = TS_OK;

  /* A FIFO among the source configs is refused instead of blocking the copy (ts-file). */
  status = ts_file_fopen_regular (src, NULL, &in, NULL, err);
  if (status != TS_OK)
    goto fail;
  /* Writing a folder over its own configs: the file is already in place. */
  if (stat (dst, &st_dst) == 0 && fstat (fileno (in), &st_src) == 0
      && st_dst.st_dev == st_src.st_dev && st_dst.st_ino == st_src.st_ino)
    goto fail;
  out = fopen (dst, "wb");
  if (!out) {
    status = ts_error_set (err, TS_ERR_IO, "%s: %s", dst, strerror (errno));
    goto fail;
  }
  while ((n = fread (buf, 1, sizeof buf, in)) > 0)
    if (fwrite (buf, 1, n, out) != n) {
      status = ts_error_set (err, TS_ERR_IO, "%s: write failed: %s", dst, strerror (errno));
      goto fail;
    }
  if (ferror (in)) {
    status = ts_error_set (err, TS_ERR_IO, "%s: read failed", src);
    goto fail;
  }
  if (fclose (out) != 0) {
    out = NULL;
    status = ts_error_set (err, TS_ERR_IO, "%s: write failed: %s", dst, strerror (errno));
    goto fail;
  }
  out = NULL;

fail:
  if (out)
    fclose (out);
  if (in)
    fclose (in);
  return status;
}

/* One config file: where it sits in the diffusers layout (also its output path), the
 * golden real-configs naming (PREFIX*.json, e.g. text_encoder_config.probable.json) and,
 * for the optional tokenizer files, the name to look for in the tokenizer folder. */
typedef struct {
  const char *layout_path;
  const char *flat_prefix;
  const char *tokenizer_name; /* NULL: required, found only among the configs */
} rm_config_file;

enum {
  RM_FILE_MODEL_INDEX,
  RM_FILE_TRANSFORMER,
  RM_FILE_VQVAE,
  RM_FILE_TEXT_ENCODER,
  RM_FILE_SCHEDULER,
  RM_FILE_TOKENIZER_CONFIG,
  RM_FILE_SPECIAL_TOKENS,
  RM_N_FILES
};

static const rm_config_file config_files[RM_N_FILES] = {
  [RM_FILE_MODEL_INDEX] = { "model_index.json", "model_index", NULL },
  [RM_FILE_TRANSFORMER] = { "transformer/config.json", "transformer_config", NULL },
  [RM_FILE_VQVAE] = { "vqvae/config.json", "vqvae_config", NULL },
  [RM_FILE_TEXT_ENCODER] = { "text_encoder/config.json", "text_encoder_config", NULL },
  [RM_FILE_SCHEDULER] = { "scheduler/scheduler_config.json", "scheduler_config", NULL },
  [RM_FILE_TOKENIZER_CONFIG] = { "tokenizer/tokenizer_config.json", "tokenizer_config",
                                 "tokenizer_config.json" },
  [RM_FILE_SPECIAL_TOKENS] = { "tokenizer/special_tokens_map.json", "tokenizer_special_tokens_map",
                               "special_tokens_map.json" },
};

/* Finds configs_dir/PREFIX*.json: PREFIX.json when present, else the first match in
 * name order (with a warning when there are several). Leaves path empty when none. */
static ts_status
find_flat_config (const char *configs_dir, const char *prefix, char *path, size_t size,
                  ts_error *err)
{
  DIR *dir;
  struct dirent *e;
  char best[256] = "";
  size_t lp = strlen (prefix);
  int n_matches = 0;

  path[0] = '\0';
  dir = opendir (configs_dir);
  if (!dir)
    return ts_error_set (err, errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_IO, "%s: %s",
                         configs_dir, strerror (errno));
  while ((e = readdir (dir))) {
    const char *rest = e->d_name + lp;
    if (strncmp (e->d_name, prefix, lp) != 0 || !ends_with (e->d_name, ".json")
        || (rest[0] != '.' && rest[0] != '\0') || strlen (e->d_name) >= sizeof best)
      continue;
    n_matches++;
    if (strcmp (rest, ".json") == 0) {
      snprintf (best, sizeof best, "%s", e->d_name);
      n_matches = 1;
      break;
    }
    if (!best[0] || strcmp (e->d_name, best) < 0)
      snprintf (best, sizeof best, "%s", e->d_name);
  }
  closedir (dir);
  if (n_matches > 1)
    TS_LOG_W ("random-model: %s: %d files match %s*.json, using %s", configs_dir, n_matches,
              prefix, best);
  if (best[0] && (size_t) snprintf (path, size, "%s/%s", configs_dir, best) >= size)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: path too long", configs_dir);
  return TS_OK;
}

/* Resolves every config file to a path (empty for an optional one that is absent). */
static ts_status
resolve_config_files (const char *configs_dir, const char *tokenizer_dir,
                      char paths[RM_N_FILES][RM_PATH_MAX], ts_error *err)
{
  ts_status st;

  for (int i = 0; i < RM_N_FILES; i++) {
    const rm_config_file *f = &config_files[i];
    char *p = paths[i];

    if ((st = path_join (p, configs_dir, f->layout_path, err)) != TS_OK)
      return st;
    if (is_regular_file (p))
      continue;
    if ((st = find_flat_config (configs_dir, f->flat_prefix, p, RM_PATH_MAX, err)) != TS_OK)
      return st;
    if (p[0])
      continue;
    if (f->tokenizer_name) {
      if ((st = path_join (p, tokenizer_dir, f->tokenizer_name, err)) != TS_OK)
        return st;
      if (!is_regular_file (p))
        p[0] = '\0';
      continue;
    }
    return ts_error_set (err, TS_ERR_NOT_FOUND, "%s: no %s (or %s*.json)", configs_dir,
                         f->layout_path, f->flat_prefix);
  }
  return TS_OK;
}

/* ---- the whole folder ---- */

ts_status
ts_make_random_model (const char *configs_dir, const char *tokenizer_dir, const char *out_dir,
                      ts_dtype dtype, uint64_t seed, ts_progress_fn progress,
                      void *progress_data, ts_error *err)
{
  static const char *const subdirs[] = { "transformer", "vqvae", "text_encoder", "tokenizer",
                                         "scheduler" };
  static const char *const tokenizer_files[] = { "vocab.json", "merges.txt" };
  char (*paths)[RM_PATH_MAX] = NULL;
  char tok_dir[RM_PATH_MAX], src[RM_PATH_MAX], dst[RM_PATH_MAX];
  ts_transformer_config tcfg;
  ts_vq_config vcfg;
  ts_clip_text_config ccfg;
  ts_scheduler_config scfg;
  ts_model_index index;
  ts_tensor_list lists[3];
  const ts_component components[3] = { TS_COMPONENT_TRANSFORMER, TS_COMPONENT_VQVAE,
                                       TS_COMPONENT_TEXT_ENCODER };
  const char *files[3] = { "diffusion_pytorch_model.safetensors",
                           "diffusion_pytorch_model.safetensors", "model.safetensors" };
  rm_writer w = { .seed = seed, .progress = progress, .progress_data = progress_data };
  ts_status status = TS_OK;

  for (int c = 0; c < 3; c++)
    ts_tensor_list_init (&lists[c]);
  if (!configs_dir || !out_dir)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "random model: configs and output folders are required");
  if (dtype != TS_DTYPE_F32 && dtype != TS_DTYPE_F16 && dtype != TS_DTYPE_BF16)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "random model: dtype %s: weights are written as F32, F16 or BF16",
                         ts_dtype_name (dtype) ? ts_dtype_name (dtype) : "(invalid)");
  if ((status = tokenizer_dir ? path_join (tok_dir, tokenizer_dir, NULL, err)
                              : path_join (tok_dir, configs_dir, "tokenizer", err))
      != TS_OK)
    return status;

  paths = calloc (RM_N_FILES, sizeof *paths);
  if (!paths) {
    status = ts_error_set (err, TS_ERR_NOMEM, "random model: out of memory");
    goto fail;
  }
  if ((status = resolve_config_files (configs_dir, tok_dir, paths, err)) != TS_OK)
    goto fail;
  for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++) {
    if ((status = path_join (src, tok_dir, tokenizer_files[i], err)) != TS_OK)
      goto fail;
    if (!is_regular_file (src)) {
      status = ts_error_set (err, TS_ERR_NOT_FOUND, "tokenizer folder %s: no %s", tok_dir,
                             tokenizer_files[i]);
      goto fail;
    }
  }

  /* Parse everything first: a folder this writes must be one the loader accepts. */
  if ((status = ts_model_index_from_file (paths[RM_FILE_MODEL_INDEX], &index, err)) != TS_OK
      || (status = ts_transformer_config_from_file (paths[RM_FILE_TRANSFORMER], &tcfg, err))
           != TS_OK
      || (status = ts_vq_config_from_file (paths[RM_FILE_VQVAE], &vcfg, err)) != TS_OK
      || (status = ts_clip_text_config_from_file (paths[RM_FILE_TEXT_ENCODER], &ccfg, err))
           != TS_OK
      || (status = ts_scheduler_config_from_file (paths[RM_FILE_SCHEDULER], &scfg, err))
           != TS_OK
      || (status = ts_transformer_config_tensors (&tcfg, &lists[0], err)) != TS_OK
      || (status = ts_vq_config_tensors (&vcfg, &lists[1], err)) != TS_OK
      || (status = ts_clip_text_config_tensors (&ccfg, &lists[2], err)) != TS_OK)
    goto fail;

  for (int c = 0; c < 3; c++)
    w.bytes_total += ts_tensor_list_n_params (&lists[c]) * ts_dtype_size (dtype);

  for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++)
    if ((status = path_join (dst, out_dir, subdirs[i], err)) != TS_OK
        || (status = make_dirs (dst, err)) != TS_OK)
      goto fail;

  for (int c = 0; c < 3; c++)
    if ((status = write_checkpoint (out_dir, ts_component_name (components[c]), files[c],
                                    components[c], &lists[c], dtype, &w, err))
        != TS_OK)
      goto fail;

  /* Configs last: an interrupted run leaves no model_index.json, so no loadable folder. */
  for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++) {
    char name[64];
    snprintf (name, sizeof name, "tokenizer/%s", tokenizer_files[i]);
    if ((status = path_join (src, tok_dir, tokenizer_files[i], err)) != TS_OK
        || (status = path_join (dst, out_dir, name, err)) != TS_OK
        || (status = copy_file (src, dst, err)) != TS_OK)
      goto fail;
  }
  for (int i = RM_N_FILES - 1; i >= 0; i--)
    if (paths[i][0]
        && ((status = path_join (dst, out_dir, config_files[i].layout_path, err)) != TS_OK
            || (status = copy_file (paths[i], dst, err)) != TS_OK))
      goto fail;
  rm_writer_report (&w, true);

fail:
  for (int c = 0; c < 3; c++)
    ts_tensor_list_clear (&lists[c]);
  free (paths);
  return status;
}
