/* SPDX-License-Identifier: MIT
 *
 * fuzz-model-folder — libFuzzer harness for the model-folder loader (pipeline/ts-model-files
 * over model/ts-config, the stages' config parsers and model/ts-safetensors), with a config
 * and its checkpoint fuzzed together, so that the checks between them (expected tensors,
 * shapes, dtypes, configs that disagree) see inputs the single-file harnesses cannot make.
 *
 * A micro model (hidden sizes of 8, one layer, F16 weights) is written once into a temporary
 * folder. Each input is one component's pair:
 *
 *     byte 0 (mod 3: transformer, vqvae, text_encoder) · config.json text · NUL · weights
 *
 * which replaces that component's config.json and safetensors file before the folder is
 * opened (ts_model_files_open, as ts_model_info_load and ts_model_load do) and, when it
 * opens, every tensor is checked for non-finite values. The template files are restored
 * afterwards. No compute: a run is a few small file writes and an mmap.
 *
 * The seeds in tests/fuzz/corpus/model-folder are the micro model's own pairs, written by
 *     TESSERA_FUZZ_WRITE_SEEDS=tests/fuzz/corpus/model-folder build-asan/tests/fuzz/fuzz-model-folder -runs=0
 */
#include "pipeline/ts-model-files.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char model_index[] =
  "{\"_class_name\":\"Pipeline\",\"scheduler\":[\"scheduler\",\"Scheduler\"],"
  "\"text_encoder\":[\"transformers\",\"CLIPTextModelWithProjection\"],"
  "\"tokenizer\":[\"transformers\",\"CLIPTokenizer\"],"
  "\"transformer\":[\"transformer\",\"Transformer2DModel\"],"
  "\"vqvae\":[\"diffusers\",\"VQModel\"]}";

static const char micro_vocab[] =
  "{\"!\":0,\"a</w>\":1,\"<|startoftext|>\":2,\"<|endoftext|>\":3}";

static const char scheduler_config[] =
  "{\"_class_name\":\"Scheduler\",\"mask_token_id\":9,\"masking_schedule\":\"cosine\"}";

/* The three networks: folder, weights file, micro config. */
static const struct {
  const char *dir, *weights, *config;
} nets[3] = {
  { "transformer", "diffusion_pytorch_model.safetensors",
    "{\"_class_name\":\"Transformer2DModel\",\"attention_head_dim\":8,"
    "\"axes_dims_rope\":[2,2,4],\"codebook_size\":8,\"downsample\":false,"
    "\"guidance_embeds\":false,\"in_channels\":8,\"joint_attention_dim\":8,"
    "\"num_attention_heads\":1,\"num_layers\":1,\"num_single_layers\":1,\"patch_size\":1,"
    "\"pooled_projection_dim\":8,\"upsample\":false,\"vocab_size\":10}" },
  { "vqvae", "diffusion_pytorch_model.safetensors",
    "{\"_class_name\":\"VQModel\",\"act_fn\":\"silu\",\"block_out_channels\":[4,4],"
    "\"down_block_types\":[\"DownEncoderBlock2D\",\"DownEncoderBlock2D\"],"
    "\"in_channels\":3,\"latent_channels\":4,\"layers_per_block\":1,"
    "\"lookup_from_codebook\":true,\"mid_block_add_attention\":false,\"norm_num_groups\":2,"
    "\"norm_type\":\"group\",\"num_vq_embeddings\":8,\"out_channels\":3,\"sample_size\":4,"
    "\"scaling_factor\":0.18215,"
    "\"up_block_types\":[\"UpDecoderBlock2D\",\"UpDecoderBlock2D\"],\"vq_embed_dim\":null}" },
  { "text_encoder", "model.safetensors",
    "{\"architectures\":[\"CLIPTextModelWithProjection\"],\"bos_token_id\":0,"
    "\"eos_token_id\":2,\"hidden_act\":\"gelu\",\"hidden_size\":8,\"intermediate_size\":8,"
    "\"layer_norm_eps\":1e-05,\"max_position_embeddings\":77,"
    "\"model_type\":\"clip_text_model\",\"num_attention_heads\":1,\"num_hidden_layers\":1,"
    "\"pad_token_id\":1,\"projection_dim\":8,\"vocab_size\":16}" },
};
static const ts_component net_components[3] = { TS_COMPONENT_TRANSFORMER, TS_COMPONENT_VQVAE,
                                                TS_COMPONENT_TEXT_ENCODER };

static char root[64];
/* Each network's template weights, restored after every input. */
static unsigned char *template_weights[3];
static size_t template_size[3];

static void
die (const char *what)
{
  fprintf (stderr, "fuzz-model-folder: %s: %s\n", what, strerror (errno));
  abort ();
}

static void
write_at (const char *dir, const char *name, const void *bytes, size_t n)
{
  char path[256];
  FILE *f;

  snprintf (path, sizeof path, "%s/%s%s%s", root, dir, *dir ? "/" : "", name);
  f = fopen (path, "wb");
  if (!f || (n && fwrite (bytes, 1, n, f) != n) || fclose (f) != 0)
    die (path);
}

static void
make_dir (const char *dir)
{
  char path[256];
  snprintf (path, sizeof path, "%s/%s", root, dir);
  if (mkdir (path, 0700) != 0 && errno != EEXIST)
    die (path);
}

/* A safetensors file holding the listed tensors as F16 ones (0x3C00), in list order. */
static unsigned char *
micro_weights (const ts_tensor_list *list, size_t *size)
{
  size_t cap = 256 + list->n * 256, len, offset = 0, data_size = 0;
  char *header = malloc (cap);
  unsigned char *out;

  if (!header)
    die ("malloc");
  len = (size_t) snprintf (header, cap, "{");
  for (size_t i = 0; i < list->n; i++) {
    const ts_tensor_spec *s = &list->items[i];
    size_t n = 1;
    len += (size_t) snprintf (header + len, cap - len, "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[",
                              i ? "," : "", s->name);
    for (int d = 0; d < s->n_dims; d++) {
      n *= (size_t) s->shape[d];
      len += (size_t) snprintf (header + len, cap - len, "%s%lld", d ? "," : "",
                                (long long) s->shape[d]);
    }
    len += (size_t) snprintf (header + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", offset,
                              offset + 2 * n);
    offset += 2 * n;
  }
  len += (size_t) snprintf (header + len, cap - len, "}");
  if (len >= cap)
    die ("header buffer");
  data_size = offset;
  *size = 8 + len + data_size;
  out = malloc (*size);
  if (!out)
    die ("malloc");
  for (int i = 0; i < 8; i++)
    out[i] = (unsigned char) ((uint64_t) len >> (8 * i));
  memcpy (out + 8, header, len);
  for (size_t i = 0; i < data_size; i += 2) {
    out[8 + len + i] = 0x00;
    out[8 + len + i + 1] = 0x3C;
  }
  free (header);
  return out;
}

/* The folder goes when the run ends (libFuzzer leaves through exit()). */
static void
remove_root (void)
{
  static const char *const files[] = {
    "model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json",
    "tokenizer/merges.txt", "transformer/config.json",
    "transformer/diffusion_pytorch_model.safetensors", "vqvae/config.json",
    "vqvae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
    "text_encoder/model.safetensors",
  };
  static const char *const dirs[] = { "scheduler", "tokenizer", "transformer", "vqvae",
                                      "text_encoder" };
  char path[256];

  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf (path, sizeof path, "%s/%s", root, files[i]);
    unlink (path);
  }
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf (path, sizeof path, "%s/%s", root, dirs[i]);
    rmdir (path);
  }
  rmdir (root);
}

static void
write_seeds (const char *dir)
{
  for (int c = 0; c < 3; c++) {
    char path[4096];
    FILE *f;
    snprintf (path, sizeof path, "%s/%s", dir, nets[c].dir);
    f = fopen (path, "wb");
    if (!f || fputc (c, f) == EOF || fputs (nets[c].config, f) == EOF || fputc (0, f) == EOF
        || fwrite (template_weights[c], 1, template_size[c], f) != template_size[c]
        || fclose (f) != 0)
      die (path);
  }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  ts_model_files *files;
  ts_error err;
  const char *seeds = getenv ("TESSERA_FUZZ_WRITE_SEEDS");

  (void) argc, (void) argv;
  ts_log_set_level (TS_LOG_ERROR);
  /* In memory where there is a tmpfs: every input rewrites two files and opens seven,
   * which on a disk-backed /tmp costs most of a run. */
  {
    struct stat shm;
    const char *base = stat ("/dev/shm", &shm) == 0 && S_ISDIR (shm.st_mode)
                           && access ("/dev/shm", W_OK) == 0
                         ? "/dev/shm"
                         : "/tmp";
    snprintf (root, sizeof root, "%s/tessera-fuzz-model-XXXXXX", base);
  }
  if (!mkdtemp (root))
    die ("mkdtemp");
  atexit (remove_root);
  write_at ("", "model_index.json", model_index, strlen (model_index));
  make_dir ("scheduler");
  write_at ("scheduler", "scheduler_config.json", scheduler_config, strlen (scheduler_config));
  make_dir ("tokenizer");
  /* The folder opens its tokenizer too (ids checked against the text encoder's 16): the
   * pad token, one word and CLIP's two special tokens. */
  write_at ("tokenizer", "vocab.json", micro_vocab, strlen (micro_vocab));
  write_at ("tokenizer", "merges.txt", "#version: 0.2\n", 14);
  for (int c = 0; c < 3; c++) {
    make_dir (nets[c].dir);
    write_at (nets[c].dir, "config.json", nets[c].config, strlen (nets[c].config));
  }
  /* The configs alone give the expected tensors; the weights are made from them. */
  files = ts_model_files_open (root, TS_LOAD_CONFIGS_ONLY, &err);
  if (!files) {
    fprintf (stderr, "fuzz-model-folder: the micro model does not load: %s\n", err.message);
    abort ();
  }
  for (int c = 0; c < 3; c++) {
    template_weights[c] = micro_weights (ts_model_files_expected (files, net_components[c]),
                                         &template_size[c]);
    write_at (nets[c].dir, nets[c].weights, template_weights[c], template_size[c]);
  }
  ts_model_files_free (files);
  files = ts_model_files_open (root, TS_LOAD_DEFAULT, &err);
  if (!files) {
    fprintf (stderr, "fuzz-model-folder: the micro model does not load: %s\n", err.message);
    abort ();
  }
  ts_model_files_free (files);
  if (seeds) {
    write_seeds (seeds);
    exit (0);
  }
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *nul;
  ts_model_files *files;
  ts_error err;
  int c;

  if (size < 1)
    return 0;
  c = data[0] % 3;
  nul = memchr (data + 1, 0, size - 1);
  if (!nul)
    return 0;
  write_at (nets[c].dir, "config.json", data + 1, (size_t) (nul - data - 1));
  write_at (nets[c].dir, nets[c].weights, nul + 1, size - (size_t) (nul + 1 - data));

  files = ts_model_files_open (root, TS_LOAD_DEFAULT, &err);
  if (files) {
    for (int k = 0; k < 3; k++) {
      const ts_st_set *set = ts_model_files_checkpoint (files, net_components[k]);
      for (size_t i = 0; set && i < ts_st_set_n_tensors (set); i++)
        if (ts_st_tensor_check_finite (ts_st_set_tensor (set, i), &err) != TS_OK
            && (err.code != TS_ERR_FORMAT || !strstr (err.message, "non-finite")))
          abort ();
    }
    ts_model_files_free (files);
  } else if (err.code >= 0 || err.message[0] == '\0') {
    abort ();
  }

  write_at (nets[c].dir, "config.json", nets[c].config, strlen (nets[c].config));
  write_at (nets[c].dir, nets[c].weights, template_weights[c], template_size[c]);
  return 0;
}
