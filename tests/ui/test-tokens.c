/* SPDX-License-Identifier: MIT
 *
 * test-tokens.c — token-native editing in the app (issue 15, suite 'ui'), on the bundled
 * demo model (128 px): saved results carry their trajectory, the step scrubber shows the
 * token grid at a step and then the picture, "Branch from Step K" and "Refine Weak Tokens"
 * run ts_model_resume and save results whose metadata and tokens say what they kept, and
 * an opened gallery image gets the scrubber too. Screenshots (1280x800) go to
 * $TESSERA_SCREENSHOT_DIR: tokens-scrub-step.png, tokens-scrub-picture.png,
 * tokens-refine.png, tokens-branch-gallery.png, tokens-paused.png, tokens-steered-gallery.png,
 * tokens-steer-reuse.png.
 *
 * Skips (77) without the demo model or without a display.
 */
#define G_SETTINGS_ENABLE_BACKEND
#include <adwaita.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <webp/demux.h>

#include "tessera-application.h"
#include "tessera-engine-types.h"
#include "tessera-preview.h"
#include "tessera-scrubber.h"
#include "tessera-window-private.h"
#include "ui-test-tmp.h"

#define SHOT_W 1280
#define SHOT_H 800
#define TIMEOUT_S 120
#define STEPS 8

static const char *demo_model_dir;
static char *tmp_dir;
static GtkApplication *app;

static gboolean
tick (gpointer data)
{
  (void) data;
  return G_SOURCE_CONTINUE;
}

/* Iterates the main loop until cond holds or timeout_s passes; no sleeps. */
#define WAIT_FOR(cond, timeout_s)                                                     \
  G_STMT_START                                                                        \
  {                                                                                   \
    gint64 end_ = g_get_monotonic_time () + (gint64) ((timeout_s) * G_USEC_PER_SEC);  \
    guint tick_ = g_timeout_add (20, tick, NULL);                                     \
    while (!(cond) && g_get_monotonic_time () < end_)                                 \
      g_main_context_iteration (NULL, TRUE);                                          \
    g_source_remove (tick_);                                                          \
    if (!(cond))                                                                      \
      g_error ("timed out after %g s waiting for %s", (double) (timeout_s), #cond);   \
  }                                                                                   \
  G_STMT_END

static void
settle (guint ms)
{
  gint64 t0 = g_get_monotonic_time ();

  WAIT_FOR (g_get_monotonic_time () - t0 > (gint64) ms * 1000, 10);
}

static GSettings *
settings (void)
{
  return g_settings_new ("io.github.tessera.Tessera");
}

/* The window as drawn after settle_ms, through its renderer, into the screenshot folder. */
static void
screenshot (TesseraWindow *win, const char *name, guint settle_ms)
{
  const char *dir = g_getenv ("TESSERA_SCREENSHOT_DIR");
  g_autofree char *path = NULL;
  g_autoptr (GdkPaintable) paintable = NULL;
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  GtkWidget *widget = GTK_WIDGET (win);
  int w, h;

  if (!dir)
    return;
  g_mkdir_with_parents (dir, 0755);
  settle (settle_ms);
  w = gtk_widget_get_width (widget);
  h = gtk_widget_get_height (widget);
  paintable = gtk_widget_paintable_new (widget);
  for (int attempt = 0; attempt < 50 && !node; attempt++)
    {
      GtkSnapshot *snapshot = gtk_snapshot_new ();

      gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
      node = gtk_snapshot_free_to_node (snapshot);
      if (!node)
        settle (20);
    }
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (GTK_NATIVE (win)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, w, h));
  path = g_build_filename (dir, name, NULL);
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot %s (%dx%d)", path, w, h);
}

static TesseraWindow *
open_demo_window (const char *gallery)
{
  g_autoptr (GSettings) s = settings ();
  TesseraWindow *win;

  g_settings_set_string (s, "model-folder", demo_model_dir);
  g_settings_set_string (s, "gallery-folder", gallery);
  g_settings_set_string (s, "preview-mode", "tokens");
  g_settings_set_int (s, "steps", STEPS);
  g_settings_set_boolean (s, "seed-locked", FALSE);
  win = tessera_window_new (ADW_APPLICATION (app));
  gtk_window_set_decorated (GTK_WINDOW (win), FALSE);
  gtk_window_set_default_size (GTK_WINDOW (win), SHOT_W, SHOT_H);
  gtk_window_present (GTK_WINDOW (win));
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  /* The codebook colours, for the token view. */
  WAIT_FOR (_tessera_window_get_palette (win, NULL, NULL) >= 1.0, TIMEOUT_S);
  return win;
}

static void
close_window (TesseraWindow *win)
{
  g_object_add_weak_pointer (G_OBJECT (win), (gpointer *) &win);
  gtk_window_destroy (GTK_WINDOW (win));
  WAIT_FOR (win == NULL, TIMEOUT_S);
}

static void
activate (TesseraWindow *win, const char *action)
{
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), action));
  g_action_group_activate_action (G_ACTION_GROUP (win), action, NULL);
}

/* Runs action (a generation or a resume) and waits for its result to be saved. */
static GFile *
run_and_save (TesseraWindow *win, const char *action)
{
  guint saved = _tessera_window_get_n_saved (win);

  activate (win, action);
  g_assert_true (_tessera_window_is_running (win));
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) > saved, TIMEOUT_S);
  return g_object_ref (_tessera_window_get_last_saved (win));
}

static ts_image *
load (GFile *file, ts_image_meta *meta)
{
  g_autofree char *path = g_file_get_path (file);
  ts_error err;
  ts_image *img;

  ts_image_meta_init (meta);
  img = ts_image_load_png (path, meta, &err);
  if (!img)
    g_error ("%s: %s", path, err.message);
  return img;
}

/* The number of frames of an animated WebP file, decoded with WebPAnimDecoder; -1 when
 * it does not decode. */
static int
count_frames (GFile *file, int *width)
{
  g_autofree char *data = NULL;
  gsize size;
  WebPData wd;
  WebPAnimDecoder *dec;
  WebPAnimInfo info;
  int n = 0;

  if (!g_file_load_contents (file, NULL, &data, &size, NULL, NULL))
    return -1;
  wd.bytes = (const uint8_t *) data;
  wd.size = size;
  dec = WebPAnimDecoderNew (&wd, NULL);
  if (!dec || !WebPAnimDecoderGetInfo (dec, &info))
    return -1;
  *width = (int) info.canvas_width;
  while (WebPAnimDecoderHasMoreFrames (dec))
    {
      uint8_t *buf;
      int ts;

      if (!WebPAnimDecoderGetNext (dec, &buf, &ts))
        {
          n = -1;
          break;
        }
      n++;
    }
  WebPAnimDecoderDelete (dec);
  return n;
}

static char *
make_gallery (const char *name)
{
  char *dir = g_build_filename (tmp_dir, name, NULL);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  return dir;
}

/* A generation: the saved PNG carries the result's trajectory, and the scrubber shows. */
static GFile *
generate_source (TesseraWindow *win, ts_image_meta *meta)
{
  const TesseraResult *r;
  GFile *file;
  int n;

  _tessera_window_set_prompt (win, "a lighthouse on a cliff at dusk");
  file = run_and_save (win, "generate");
  r = _tessera_window_get_last_result (win);
  g_assert_nonnull (r->reveal_step);
  ts_image_free (load (file, meta));
  n = r->grid_h * r->grid_w;
  g_assert_cmpuint (meta->traj_grid_h, ==, (guint) r->grid_h);
  g_assert_cmpuint (meta->traj_grid_w, ==, (guint) r->grid_w);
  g_assert_cmpmem (meta->traj_codes, n * sizeof (int32_t), r->tokens, n * sizeof (int32_t));
  g_assert_cmpmem (meta->traj_reveal_step, n * sizeof (guint16), r->reveal_step, n * sizeof (guint16));
  for (int i = 0; i < n; i++)
    {
      g_assert_cmpuint (meta->traj_reveal_step[i], >=, 1);
      g_assert_cmpuint (meta->traj_reveal_step[i], <=, STEPS);
      g_assert_true (meta->traj_confidence[i] > 0 && meta->traj_confidence[i] <= 1);
    }
  return file;
}

static void
test_trajectory_and_scrub (void)
{
  g_autofree char *gallery = make_gallery ("scrub");
  TesseraWindow *win = open_demo_window (gallery);
  TesseraScrubber *scrubber = _tessera_window_get_scrubber (win);
  g_autoptr (GFile) file = NULL;
  ts_image_meta meta;
  GdkPaintable *before, *shown;
  int k = STEPS / 2, n_revealed = 0;

  file = generate_source (win, &meta);
  /* The "Saved" toast would cover the scrubber in the screenshots; transitions settle. */
  WAIT_FOR (_tessera_window_get_n_toasts (win) == 0, 30);
  settle (700);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (scrubber)));
  g_assert_true (tessera_scrubber_has_trajectory (scrubber));
  g_assert_cmpint (tessera_scrubber_get_n_steps (scrubber), ==, STEPS);
  g_assert_cmpint (tessera_scrubber_get_step (scrubber), ==, STEPS);

  /* A middle step: the token grid at once (the live preview's 512 px rendering, not the
   * 128 px picture), then the picture with the later tokens greyed out. */
  before = _tessera_window_get_canvas_paintable (win);
  tessera_scrubber_set_step (scrubber, k);
  g_assert_cmpstr (tessera_scrubber_get_view (scrubber), ==, "tokens");
  shown = _tessera_window_get_canvas_paintable (win);
  g_assert_true (shown != before);
  g_assert_cmpint (gdk_paintable_get_intrinsic_width (shown), >, 128);
  screenshot (win, "tokens-scrub-step.png", 80);
  g_assert_cmpstr (tessera_scrubber_get_view (scrubber), ==, "tokens");
  WAIT_FOR (g_strcmp0 (tessera_scrubber_get_view (scrubber), "picture") == 0, 10);
  shown = _tessera_window_get_canvas_paintable (win);
  g_assert_cmpint (gdk_paintable_get_intrinsic_width (shown), ==, 128);
  screenshot (win, "tokens-scrub-picture.png", 400);
  /* The picture at step k: grey exactly where the tokens came later. */
  {
    GdkTexture *t = GDK_TEXTURE (shown);
    g_autofree guint8 *px = g_malloc (128 * 128 * 4);
    int gw = (int) meta.traj_grid_w, cell = 128 / gw;

    gdk_texture_download (t, px, 128 * 4);
    for (int i = 0; i < gw * (int) meta.traj_grid_h; i++)
      {
        const guint8 *p = px + ((gsize) (i / gw) * cell + cell / 2) * 128 * 4 + (gsize) ((i % gw) * cell + cell / 2) * 4;
        gboolean later = meta.traj_reveal_step[i] > k;
        gboolean grey = p[0] == 0x80 && p[1] == 0x80 && p[2] == 0x80;

        if (later)
          g_assert_true (grey);
        n_revealed += !later;
      }
  }
  g_test_message ("step %d of %d: %d of %u tokens revealed", k, STEPS, n_revealed, meta.traj_grid_w * meta.traj_grid_h);
  g_assert_cmpint (n_revealed, >, 0);
  g_assert_cmpint (n_revealed, <, (int) (meta.traj_grid_w * meta.traj_grid_h));

  /* Back at the last step the picture is the result itself. */
  tessera_scrubber_set_step (scrubber, STEPS);
  WAIT_FOR (g_strcmp0 (tessera_scrubber_get_view (scrubber), "picture") == 0, 10);

  /* An image opened from the gallery gets the scrubber too; one without a trajectory
   * hides it. */
  tessera_scrubber_set_image (scrubber, NULL, NULL, 0);
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (scrubber)));
  {
    guint opened = _tessera_window_get_n_opened (win);

    tessera_window_open_file (win, file);
    WAIT_FOR (_tessera_window_get_n_opened (win) > opened, 10);
  }
  g_assert_true (tessera_scrubber_has_trajectory (scrubber));
  g_assert_cmpint (tessera_scrubber_get_n_steps (scrubber), ==, STEPS);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "export-unmasking"));

  /* Its unmasking as an animated WebP: one frame per step, in both styles. */
  for (int codebook = 0; codebook < 2; codebook++)
    {
      g_autofree char *path = g_build_filename (gallery, codebook ? "codebook.webp" : "picture.webp", NULL);
      g_autoptr (GFile) webp = g_file_new_for_path (path);
      guint exported = win->n_exported;
      int width = 0;

      _tessera_window_tokens_export (win, webp, codebook);
      WAIT_FOR (win->n_exported > exported, 30);
      g_assert_cmpstr (_tessera_window_get_last_toast (win), ==, codebook ? "Exported “codebook.webp”" : "Exported “picture.webp”");
      g_assert_cmpint (count_frames (webp, &width), ==, STEPS);
      g_assert_cmpint (width, ==, 128);
    }
  ts_image_meta_clear (&meta);
  close_window (win);
}

static void
test_branch (void)
{
  g_autofree char *gallery = make_gallery ("branch");
  TesseraWindow *win = open_demo_window (gallery);
  TesseraScrubber *scrubber = _tessera_window_get_scrubber (win);
  g_autoptr (GFile) source = NULL;
  g_autoptr (GFile) branch = NULL;
  ts_image_meta src, meta;
  ts_image *img;
  int k = 3, n, n_kept = 0, n_changed = 0;
  guint64 seed;

  source = generate_source (win, &src);
  seed = src.seed;
  tessera_scrubber_set_step (scrubber, k);
  branch = run_and_save (win, "branch-from-step");
  img = load (branch, &meta);
  g_assert_cmpstr (meta.mode, ==, "branch");
  g_assert_cmpuint (meta.from_step, ==, (guint) k);
  g_assert_cmpuint (meta.steps, ==, STEPS);
  g_assert_nonnull (meta.source);
  g_assert_true (g_str_has_suffix (g_file_peek_path (source), meta.source));
  g_assert_true (g_str_has_prefix (meta.source_hash, "sha256:"));
  g_assert_cmpuint (meta.seed, !=, seed);
  g_assert_cmpuint (meta.traj_grid_h, ==, src.traj_grid_h);
  n = (int) (meta.traj_grid_h * meta.traj_grid_w);
  for (int i = 0; i < n; i++)
    if (src.traj_reveal_step[i] <= k)
      {
        /* Kept: the same code, with its history. */
        g_assert_cmpint (meta.traj_codes[i], ==, src.traj_codes[i]);
        g_assert_cmpuint (meta.traj_reveal_step[i], ==, src.traj_reveal_step[i]);
        n_kept++;
      }
    else
      {
        g_assert_cmpuint (meta.traj_reveal_step[i], >, (guint) k);
        n_changed += meta.traj_codes[i] != src.traj_codes[i];
      }
  g_test_message ("branch from step %d: %d tokens kept, %d of the other %d redrawn differently", k, n_kept,
                  n_changed, n - n_kept);
  g_assert_cmpint (n_kept, >, 0);
  g_assert_cmpint (n_changed, >, 0);
  /* The result is on the canvas with a scrubber of its own, and in the gallery. */
  g_assert_true (tessera_scrubber_has_trajectory (scrubber));
  g_assert_cmpint (tessera_scrubber_get_step (scrubber), ==, STEPS);
  adw_view_stack_set_visible_child_name (win->view_stack, "gallery");
  tessera_gallery_select_file (_tessera_window_get_gallery (win), branch);
  WAIT_FOR (_tessera_window_get_n_toasts (win) == 0, 30);
  screenshot (win, "tokens-branch-gallery.png", 900);
  ts_image_free (img);
  ts_image_meta_clear (&meta);
  ts_image_meta_clear (&src);
  close_window (win);
}

static void
test_refine (void)
{
  g_autofree char *gallery = make_gallery ("refine");
  TesseraWindow *win = open_demo_window (gallery);
  TesseraScrubber *scrubber = _tessera_window_get_scrubber (win);
  g_autoptr (GFile) source = NULL;
  g_autoptr (GFile) refined = NULL;
  ts_image_meta src, meta;
  ts_image *img;
  double f = 0.25;
  int n, want, n_redrawn = 0;
  float threshold = 0;

  source = generate_source (win, &src);
  n = (int) (src.traj_grid_h * src.traj_grid_w);
  want = (int) lround (f * n);
  WAIT_FOR (_tessera_window_get_n_toasts (win) == 0, 30);
  tessera_scrubber_set_remask (scrubber, f);
  g_assert_cmpstr (tessera_scrubber_get_view (scrubber), ==, "refine");
  g_assert_true (tessera_preview_is_heat_map (_tessera_window_get_canvas_paintable (win)));
  screenshot (win, "tokens-refine.png", 500);
  /* The highlighted tokens are the want least confident ones. */
  {
    g_autofree int32_t *tokens = g_new (int32_t, n);
    double ratio = 0;
    int32_t mask_id = _tessera_window_get_model_info (win)->mask_token_id;

    g_assert_cmpint (tessera_scrubber_fill_refine (scrubber, f, tokens, &ratio), ==, want);
    g_assert_cmpfloat_with_epsilon (ratio, (double) want / n, 1e-9);
    for (int i = 0; i < n; i++)
      if (tokens[i] == mask_id)
        threshold = MAX (threshold, src.traj_confidence[i]);
    for (int i = 0; i < n; i++)
      if (tokens[i] != mask_id)
        g_assert_cmpfloat (src.traj_confidence[i], >=, threshold);
  }
  refined = run_and_save (win, "refine-tokens");
  img = load (refined, &meta);
  g_assert_cmpstr (meta.mode, ==, "refine");
  g_assert_cmpfloat_with_epsilon (meta.remask, f, 1e-6);
  g_assert_cmpfloat_with_epsilon (meta.starting_mask_ratio, (double) want / n, 1e-6);
  g_assert_cmpuint (meta.traj_grid_h, ==, src.traj_grid_h);
  for (int i = 0; i < n; i++)
    if (src.traj_confidence[i] > threshold)
      {
        /* Confident tokens stay exactly; the engine marks them as never masked. */
        g_assert_cmpint (meta.traj_codes[i], ==, src.traj_codes[i]);
        g_assert_cmpuint (meta.traj_reveal_step[i], ==, 0);
      }
    else
      n_redrawn += meta.traj_reveal_step[i] > 0;
  g_test_message ("refine %.2f: %d of %d tokens redrawn", f, n_redrawn, n);
  g_assert_cmpint (n_redrawn, ==, want);
  ts_image_free (img);
  ts_image_meta_clear (&meta);
  ts_image_meta_clear (&src);
  close_window (win);
}

/* Selects file in the gallery; whether it is shown with its parameters read. */
static gboolean
shown_in_gallery (TesseraGallery *gallery, GFile *file)
{
  TesseraGalleryItem *item = tessera_gallery_get_selected (gallery);

  if (!item || !g_file_equal (tessera_gallery_item_get_file (item), file))
    tessera_gallery_select_file (gallery, file);
  item = tessera_gallery_get_selected (gallery);
  return item && g_file_equal (tessera_gallery_item_get_file (item), file) && tessera_gallery_item_get_meta (item);
}

/* Pause, edit, continue: the run waits between two steps, the changed prompt and guidance
 * apply from the next step, the PNG records the change and its step after the parameters
 * it started with, and the image is, token for token, the engine's resume from the state
 * after that step with the new parameters. Cancel works while paused. */
static void
test_steer (void)
{
  g_autofree char *gallery = make_gallery ("steer");
  g_autoptr (GSettings) s = settings ();
  TesseraWindow *win;
  g_autoptr (GFile) file = NULL;
  ts_image_meta meta;
  ts_image *img;
  int k, steps = 120;
  guint updates;

  win = open_demo_window (gallery);
  g_settings_set_int (s, "steps", steps);
  g_settings_set_double (s, "guidance", 9.0);
  _tessera_window_set_prompt (win, "a lighthouse on a cliff at dusk");
  activate (win, "generate");
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 3, TIMEOUT_S);
  activate (win, "pause");
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "pause"));
  WAIT_FOR (_tessera_window_is_paused (win), TIMEOUT_S);
  g_assert_true (_tessera_window_is_running (win));
  g_assert_true (g_str_has_prefix (_tessera_window_get_status_text (win), "Paused after step "));
  /* Nothing runs while paused. */
  updates = _tessera_window_get_n_step_updates (win);
  settle (400);
  g_assert_cmpuint (_tessera_window_get_n_step_updates (win), ==, updates);
  k = (int) updates;
  _tessera_window_set_prompt (win, "a red barn in a snowy field");
  g_settings_set_double (s, "guidance", 4.0);
  screenshot (win, "tokens-paused.png", 300);
  {
    guint saved = _tessera_window_get_n_saved (win);

    activate (win, "pause"); /* Continue */
    g_assert_false (_tessera_window_is_paused (win));
    WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) > saved, TIMEOUT_S);
  }
  file = g_object_ref (_tessera_window_get_last_saved (win));
  img = load (file, &meta);
  g_assert_cmpstr (meta.prompt, ==, "a lighthouse on a cliff at dusk");
  g_assert_cmpfloat (meta.cfg, ==, 9.0);
  g_assert_cmpuint (meta.n_steer, ==, 1);
  g_assert_cmpuint (meta.steer[0].step, ==, (guint) k + 1);
  g_assert_cmpstr (meta.steer[0].prompt, ==, "a red barn in a snowy field");
  g_assert_null (meta.steer[0].negative_prompt);
  g_assert_cmpfloat (meta.steer[0].cfg, ==, 4.0);
  g_assert_true (isnan (meta.steer[0].temperature_start));
  g_test_message ("paused after step %d of %d, steered from step %u", k, steps, meta.steer[0].step);

  /* The engine's resume from the state after step k with the new parameters. */
  {
    g_autofree char *dir = g_settings_get_string (s, "model-folder");
    ts_model_load_params lp;
    ts_generate_params p;
    ts_resume_state rs = { 0 };
    ts_result r = { 0 };
    ts_error err;
    ts_model *model;
    int n = (int) (meta.traj_grid_h * meta.traj_grid_w);
    g_autofree int32_t *tokens = g_new (int32_t, n);

    ts_model_load_params_init (&lp);
    lp.backend = meta.backend;
    model = ts_model_load (dir, &lp, &err);
    g_assert_nonnull (model);
    for (int i = 0; i < n; i++)
      tokens[i] = meta.traj_reveal_step[i] <= k ? meta.traj_codes[i] : ts_model_mask_token_id (model);
    ts_generate_params_init (&p);
    p.prompt = meta.steer[0].prompt;
    p.negative_prompt = meta.negative_prompt;
    p.width = meta.width;
    p.height = meta.height;
    p.steps = (int) meta.steps;
    p.guidance = meta.steer[0].cfg;
    p.temperature_start = meta.temperature_start;
    p.temperature_end = meta.temperature_end;
    p.aesthetic_score = meta.aesthetic_score;
    p.seed = meta.seed;
    rs.tokens = tokens;
    rs.grid_h = (int) meta.traj_grid_h;
    rs.grid_w = (int) meta.traj_grid_w;
    rs.start_step = k;
    rs.starting_mask_ratio = 1;
    g_assert_cmpint (ts_model_resume (model, &p, &rs, &r, &err), ==, TS_OK);
    g_assert_cmpmem (r.tokens, n * sizeof (int32_t), meta.traj_codes, n * sizeof (int32_t));
    g_assert_cmpmem (r.image->pixels, (gsize) img->width * img->height * 3, img->pixels,
                     (gsize) img->width * img->height * 3);
    ts_result_free (&r);
    ts_model_free (model);
  }
  /* The gallery lists the change (once its folder monitor has seen the file). */
  adw_view_stack_set_visible_child_name (win->view_stack, "gallery");
  WAIT_FOR (shown_in_gallery (_tessera_window_get_gallery (win), file), TIMEOUT_S);
  WAIT_FOR (_tessera_window_get_n_toasts (win) == 0, 30);
  screenshot (win, "tokens-steered-gallery.png", 900);
  adw_view_stack_set_visible_child_name (win->view_stack, "generate");

  /* Reuse replays the changes at their steps: the same image again, pixel for pixel. */
  {
    guint opened = _tessera_window_get_n_opened (win);
    GArray *plan;
    g_autoptr (GFile) again = NULL;
    ts_image_meta meta2;
    ts_image *img2;

    _tessera_window_set_prompt (win, "something else");
    tessera_window_open_file (win, file);
    WAIT_FOR (_tessera_window_get_n_opened (win) > opened, TIMEOUT_S);
    plan = tessera_generate_page_get_steer (_tessera_window_get_generate_page (win));
    g_assert_nonnull (plan);
    g_assert_cmpuint (plan->len, ==, 1);
    g_assert_cmpuint (g_array_index (plan, ts_image_steer, 0).step, ==, (guint) k + 1);
    WAIT_FOR (_tessera_window_get_n_toasts (win) == 0, 30);
    screenshot (win, "tokens-steer-reuse.png", 300);
    again = run_and_save (win, "generate");
    img2 = load (again, &meta2);
    g_assert_cmpmem (img2->pixels, (gsize) img2->width * img2->height * 3, img->pixels,
                     (gsize) img->width * img->height * 3);
    g_assert_cmpstr (meta2.prompt, ==, meta.prompt);
    g_assert_cmpuint (meta2.n_steer, ==, 1);
    g_assert_cmpuint (meta2.steer[0].step, ==, meta.steer[0].step);
    g_assert_cmpstr (meta2.steer[0].prompt, ==, meta.steer[0].prompt);
    g_assert_cmpfloat (meta2.steer[0].cfg, ==, meta.steer[0].cfg);
    ts_image_free (img2);
    ts_image_meta_clear (&meta2);
    /* Cleared, the starting settings hold throughout. */
    gtk_widget_activate_action (GTK_WIDGET (_tessera_window_get_generate_page (win)), "generate-page.clear-steer",
                                NULL);
    g_assert_null (tessera_generate_page_get_steer (_tessera_window_get_generate_page (win)));
  }
  ts_image_free (img);
  ts_image_meta_clear (&meta);

  /* Cancel while paused ends the run at once. */
  activate (win, "generate");
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 2, TIMEOUT_S);
  activate (win, "pause");
  WAIT_FOR (_tessera_window_is_paused (win), TIMEOUT_S);
  activate (win, "cancel");
  WAIT_FOR (!_tessera_window_is_running (win), 10);
  g_assert_false (_tessera_window_is_paused (win));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "pause"));
  g_settings_set_int (s, "steps", STEPS);
  close_window (win);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  demo_model_dir = g_getenv ("TESSERA_DEMO_MODEL_DIR");
  if (!demo_model_dir || !g_file_test (demo_model_dir, G_FILE_TEST_IS_DIR))
    {
      g_printerr ("TESSERA_DEMO_MODEL_DIR is not set or missing: skipping\n");
      return 77;
    }
  tmp = g_dir_make_tmp ("tessera-tokens-XXXXXX", &error);
  g_assert_no_error (error);
  tmp_dir = g_strdup (tmp);
  if (!gtk_init_check ())
    {
      g_printerr ("no display: skipping\n");
      return 77;
    }
  adw_init ();
  tessera_engine_init_logging ();
  app = g_object_new (TESSERA_TYPE_APPLICATION, "application-id", APP_ID, "resource-base-path", APP_RESOURCE_PATH,
                      "flags", G_APPLICATION_NON_UNIQUE, NULL);
  g_application_register (G_APPLICATION (app), NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/tokens/trajectory-and-scrub", test_trajectory_and_scrub);
  g_test_add_func ("/tokens/branch", test_branch);
  g_test_add_func ("/tokens/refine", test_refine);
  g_test_add_func ("/tokens/steer", test_steer);
  ret = g_test_run ();
  g_object_unref (app);
  ui_test_remove_tmp (tmp_dir);
  g_free (tmp_dir);
  return ret;
}
