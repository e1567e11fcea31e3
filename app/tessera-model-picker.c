/* SPDX-License-Identifier: MIT
 *
 * tessera-model-picker.c — the header's model button (see the header file). The list is
 * rebuilt from the disk each time the popover opens: the bundled demo model
 * (ts_default_model_dir), every folder with a model_index.json in
 * $XDG_DATA_HOME/tessera/models, the folder in "model-folder" when it is none of those
 * ("chosen by hand"), and the Hugging Face cache's snapshots ($HF_HUB_CACHE, else
 * $HF_HOME/hub, else ~/.cache/huggingface/hub; models--ORG--NAME/snapshots/REV), which load
 * where they are. A download runs tessera_hub_download() on a GTask thread; its progress is
 * copied and posted to the main loop with a weak reference, so a closed window stops
 * nothing but the download itself (dispose cancels it, leaving resumable files).
 */
#include "tessera-model-picker.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "tessera-engine-types.h"
#ifdef TESSERA_HAVE_HUB
#include "tessera-hub.h"
#endif

#define CATALOGUE_REPO "MeissonFlow/Meissonic"

typedef struct
{
  char *name;
  char *dir;    /* "" for the bundled demo model (the setting's value for it) */
  char *detail; /* "where · size · precision" */
} ModelEntry;

struct _TesseraModelPicker
{
  GtkWidget parent_instance;

  GtkMenuButton *button;
  GtkLabel *title_label;
  GtkLabel *subtitle_label;
  GtkPopover *popover;
  GtkListBox *model_list;
  AdwActionRow *catalogue_row;
  GtkButton *download_button;
  GtkButton *pause_button;
  GtkButton *discard_button;
  GtkProgressBar *progress_bar;
  GtkLabel *status_label;

  GSettings *settings;
  GPtrArray *models; /* ModelEntry */
  GCancellable *download_cancellable;
  char *download_dir;
  char *finished_dir; /* the last finished download, for the switch it offers */
  guint n_toasts;     /* shown and not yet dismissed */
};

G_DEFINE_FINAL_TYPE (TesseraModelPicker, tessera_model_picker, GTK_TYPE_WIDGET)

static void
model_entry_free (ModelEntry *e)
{
  g_free (e->name);
  g_free (e->dir);
  g_free (e->detail);
  g_free (e);
}

/* ---- scanning ---- */

/* Bytes of the safetensors weights in a model folder's component folders, following the
 * Hugging Face cache's links, and their precision: "fp16" where every component has fp16
 * weights or only full ones (what an fp16 download holds), "fp16 + fp32" where some
 * component has both, else "fp32". */
static const char *
measure (const char *dir, guint64 *bytes)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  gboolean any_fp16 = FALSE, any_full = FALSE, both = FALSE;
  const char *comp;

  *bytes = 0;
  while (d && (comp = g_dir_read_name (d)))
    {
      g_autofree char *sub = g_build_filename (dir, comp, NULL);
      g_autoptr (GDir) sd = g_dir_open (sub, 0, NULL);
      gboolean fp16 = FALSE, full = FALSE;
      const char *name;

      while (sd && (name = g_dir_read_name (sd)))
        {
          g_autofree char *path = NULL;
          GStatBuf st;

          if (!g_str_has_suffix (name, ".safetensors"))
            continue;
          path = g_build_filename (sub, name, NULL);
          if (g_stat (path, &st) != 0 || !S_ISREG (st.st_mode))
            continue;
          *bytes += (guint64) st.st_size;
          if (strstr (name, ".fp16."))
            fp16 = TRUE;
          else
            full = TRUE;
        }
      any_fp16 |= fp16;
      any_full |= full;
      both |= fp16 && full;
    }
  if (both)
    return _("fp16 + fp32");
  if (any_fp16)
    return "fp16";
  return any_full ? "fp32" : _("no weights");
}

static void
add_model (TesseraModelPicker *self, const char *name, const char *dir, const char *path,
           const char *where)
{
  ModelEntry *e = g_new0 (ModelEntry, 1);
  g_autofree char *size = NULL;
  guint64 bytes;
  const char *precision = measure (path, &bytes);

  size = g_format_size (bytes);
  e->name = g_strdup (name);
  e->dir = g_strdup (dir);
  /* Translators: where a model is, its size on disk and its precision */
  e->detail = g_strdup_printf (_("%s · %s · %s"), where, size, precision);
  g_ptr_array_add (self->models, e);
}

static gboolean
has_model_index (const char *dir)
{
  g_autofree char *index = g_build_filename (dir, "model_index.json", NULL);
  return g_file_test (index, G_FILE_TEST_IS_REGULAR);
}

/* The repository a download recorded in its folder, or NULL. */
static char *
downloaded_repo (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, ".tessera-download.json", NULL);
  g_autofree char *text = NULL;
  const char *key, *start, *end;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  /* The file is ours and flat at this level: "repo" : "ORG/NAME". */
  if (!(key = strstr (text, "\"repo\"")) || !(start = strchr (key + 6, '"'))
      || !(end = strchr (start + 1, '"')))
    return NULL;
  return g_strndup (start + 1, end - start - 1);
}

static char *
hf_cache_dir (void)
{
  const char *env;

  if ((env = g_getenv ("HF_HUB_CACHE")) && *env)
    return g_strdup (env);
  if ((env = g_getenv ("HF_HOME")) && *env)
    return g_build_filename (env, "hub", NULL);
  return g_build_filename (g_get_home_dir (), ".cache", "huggingface", "hub", NULL);
}

static void
scan_hf_cache (TesseraModelPicker *self)
{
  g_autofree char *cache = hf_cache_dir ();
  g_autoptr (GDir) d = g_dir_open (cache, 0, NULL);
  const char *repo;

  while (d && (repo = g_dir_read_name (d)))
    {
      g_autofree char *snapshots = NULL;
      g_autoptr (GDir) sd = NULL;
      g_auto (GStrv) parts = NULL;
      const char *rev;

      if (!g_str_has_prefix (repo, "models--"))
        continue;
      parts = g_strsplit (repo + strlen ("models--"), "--", 2);
      if (g_strv_length (parts) != 2)
        continue;
      snapshots = g_build_filename (cache, repo, "snapshots", NULL);
      sd = g_dir_open (snapshots, 0, NULL);
      while (sd && (rev = g_dir_read_name (sd)))
        {
          g_autofree char *path = g_build_filename (snapshots, rev, NULL);
          g_autofree char *name = g_strdup_printf ("%s/%s", parts[0], parts[1]);
          g_autofree char *short_rev = g_strndup (rev, 7);
          /* Translators: a model in the Hugging Face cache, at a commit */
          g_autofree char *where = g_strdup_printf (_("Hugging Face cache, %s"), short_rev);

          if (has_model_index (path))
            add_model (self, name, path, path, where);
        }
    }
}

static const ModelEntry *
find_model (TesseraModelPicker *self, const char *dir)
{
  for (guint i = 0; i < self->models->len; i++)
    {
      const ModelEntry *e = g_ptr_array_index (self->models, i);
      if (g_strcmp0 (e->dir, dir) == 0)
        return e;
    }
  return NULL;
}

static char *
current_dir (TesseraModelPicker *self)
{
  return self->settings ? g_settings_get_string (self->settings, "model-folder") : g_strdup ("");
}

static void
update_header (TesseraModelPicker *self)
{
  g_autofree char *dir = current_dir (self);
  const ModelEntry *e = find_model (self, dir);

  gtk_label_set_label (self->title_label, e ? e->name : _("No model"));
  gtk_label_set_label (self->subtitle_label, e ? e->detail : "");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->button), e && *e->dir ? e->dir : _("Model"));
}

static GtkWidget *
model_row (TesseraModelPicker *self, const ModelEntry *e, gboolean current)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *check = gtk_image_new_from_icon_name ("object-select-symbolic");

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), e->name);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), e->detail);
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
  gtk_widget_set_opacity (check, current ? 1.0 : 0.0);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), check);
  (void) self;
  return row;
}

void
tessera_model_picker_rescan (TesseraModelPicker *self)
{
  g_autofree char *dir = NULL;
  g_autofree char *models_dir = g_build_filename (g_get_user_data_dir (), "tessera", "models", NULL);
  g_autoptr (GDir) d = NULL;
  const char *demo = ts_default_model_dir ();
  const char *name;
  GtkWidget *child;

  g_return_if_fail (TESSERA_IS_MODEL_PICKER (self));

  g_ptr_array_set_size (self->models, 0);
  if (demo)
    add_model (self, _("Bundled demo model"), "", demo, _("built in"));
  d = g_dir_open (models_dir, 0, NULL);
  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (models_dir, name, NULL);
      g_autofree char *repo = NULL;

      if (!has_model_index (path))
        continue;
      repo = downloaded_repo (path);
      add_model (self, repo ? repo : name, path, path, _("Tessera's models"));
    }
  scan_hf_cache (self);
  dir = current_dir (self);
  if (*dir && !find_model (self, dir))
    {
      g_autofree char *base = g_path_get_basename (dir);
      add_model (self, base, dir, dir, _("chosen folder"));
    }

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->model_list))))
    gtk_list_box_remove (self->model_list, child);
  for (guint i = 0; i < self->models->len; i++)
    {
      const ModelEntry *e = g_ptr_array_index (self->models, i);
      gtk_list_box_append (self->model_list, model_row (self, e, g_strcmp0 (e->dir, dir) == 0));
    }
  update_header (self);
}

static void
switch_to (TesseraModelPicker *self, const char *dir)
{
  if (self->settings)
    g_settings_set_string (self->settings, "model-folder", dir);
  gtk_popover_popdown (self->popover);
}

static void
on_row_activated (TesseraModelPicker *self, GtkListBoxRow *row)
{
  int i = gtk_list_box_row_get_index (row);

  if (i >= 0 && (guint) i < self->models->len)
    switch_to (self, ((ModelEntry *) g_ptr_array_index (self->models, i))->dir);
}

static void
on_popover_show (TesseraModelPicker *self)
{
  tessera_model_picker_rescan (self);
}

/* ---- downloads ---- */

static void
show_status (TesseraModelPicker *self, const char *text, gboolean error)
{
  gtk_label_set_label (self->status_label, text ? text : "");
  gtk_widget_set_visible (GTK_WIDGET (self->status_label), text && *text);
  if (error)
    gtk_widget_add_css_class (GTK_WIDGET (self->status_label), "error");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self->status_label), "error");
}

static void
set_downloading (TesseraModelPicker *self, gboolean on)
{
  gtk_widget_set_visible (GTK_WIDGET (self->download_button), !on);
  gtk_widget_set_visible (GTK_WIDGET (self->pause_button), on);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), on);
  if (on)
    gtk_widget_set_visible (GTK_WIDGET (self->discard_button), FALSE);
}

/* "Download", or "Resume" where an earlier download stopped part way (also after a
 * restart: its files are in the folder). */
static void
update_download_label (TesseraModelPicker *self)
{
#ifdef TESSERA_HAVE_HUB
  g_autofree char *dir = tessera_hub_default_dir (CATALOGUE_REPO);
  g_autofree char *state = g_build_filename (dir, ".tessera-download.json", NULL);
  gboolean partial = g_file_test (state, G_FILE_TEST_EXISTS) && !has_model_index (dir);

  gtk_button_set_label (self->download_button, partial ? _("Resume") : _("Download"));
  gtk_widget_set_visible (GTK_WIDGET (self->discard_button), partial && !self->download_cancellable);
  gtk_widget_set_sensitive (GTK_WIDGET (self->download_button), !has_model_index (dir));
  if (has_model_index (dir))
    gtk_button_set_label (self->download_button, _("Downloaded"));
#else
  gtk_widget_set_sensitive (GTK_WIDGET (self->download_button), FALSE);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->download_button),
                               _("This build has no downloads (libsoup 3 was missing)"));
#endif
}

#ifdef TESSERA_HAVE_HUB
/* A weak reference to the picker shared by the job and its progress posts, so the
 * download thread never holds (or drops) a reference to the widget. */
typedef struct
{
  GWeakRef ref;
} PickerRef;

static void
picker_ref_clear (gpointer data)
{
  g_weak_ref_clear (&((PickerRef *) data)->ref);
}

typedef struct
{
  PickerRef *picker;
  double fraction;
  char *text;
} ProgressPost;

static void
progress_post_free (gpointer data)
{
  ProgressPost *p = data;
  g_atomic_rc_box_release_full (p->picker, picker_ref_clear);
  g_free (p->text);
  g_free (p);
}

static gboolean
apply_progress (gpointer data)
{
  ProgressPost *p = data;
  g_autoptr (TesseraModelPicker) self = g_weak_ref_get (&p->picker->ref);

  if (self && self->download_cancellable)
    {
      gtk_progress_bar_set_fraction (self->progress_bar, p->fraction);
      gtk_progress_bar_set_text (self->progress_bar, p->text);
    }
  return G_SOURCE_REMOVE;
}

typedef struct
{
  PickerRef *picker;
  char *dir;
  gint64 last_post_us;
} DownloadJob;

static void
download_job_free (gpointer data)
{
  DownloadJob *job = data;
  g_atomic_rc_box_release_full (job->picker, picker_ref_clear);
  g_free (job->dir);
  g_free (job);
}

/* On the download thread: copy what the bar needs and post it. */
static void
on_hub_progress (const TesseraHubProgress *p, gpointer user_data)
{
  DownloadJob *job = user_data;
  ProgressPost *post;
  g_autofree char *done = NULL, *total = NULL, *rate = NULL;
  gint64 now = g_get_monotonic_time ();

  if (p->event == TESSERA_HUB_EVENT_PROGRESS && now - job->last_post_us < 100000)
    return;
  job->last_post_us = now;
  post = g_new0 (ProgressPost, 1);
  post->picker = g_atomic_rc_box_acquire (job->picker);
  done = g_format_size (p->total_done);
  total = g_format_size (p->total_size);
  rate = g_format_size ((guint64) p->rate);
  post->fraction = p->total_size ? (double) p->total_done / (double) p->total_size : 0;
  if (p->eta_s >= 0 && p->eta_s < 60)
    /* Translators: download progress: bytes done, bytes in all, rate, seconds left */
    post->text = g_strdup_printf (_("%s of %s · %s/s · %.0f s left"), done, total, rate,
                                  ceil (p->eta_s));
  else if (p->eta_s >= 0)
    /* Translators: download progress: bytes done, bytes in all, rate, minutes left */
    post->text = g_strdup_printf (_("%s of %s · %s/s · %.0f min left"), done, total, rate,
                                  ceil (p->eta_s / 60.0));
  else
    post->text = g_strdup_printf (_("%s of %s"), done, total);
  g_main_context_invoke_full (NULL, G_PRIORITY_DEFAULT, apply_progress, post, progress_post_free);
}

static void
download_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  DownloadJob *job = task_data;
  TesseraHubOptions opts = { .variant = TESSERA_HUB_VARIANT_FP16, .progress = on_hub_progress,
                             .progress_data = job };
  GError *error = NULL;

  (void) source;
  if (tessera_hub_download (CATALOGUE_REPO, job->dir, &opts, NULL, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
on_toast_switch (AdwToast *toast, TesseraModelPicker *self)
{
  (void) toast;
  _tessera_model_picker_switch_to_download (self);
}

static void
on_toast_dismissed (AdwToast *toast, TesseraModelPicker *self)
{
  (void) toast;
  self->n_toasts--;
}

static void
toast (TesseraModelPicker *self, const char *title, gboolean offer_switch)
{
  GtkWidget *overlay = gtk_widget_get_ancestor (GTK_WIDGET (self), ADW_TYPE_TOAST_OVERLAY);
  AdwToast *t;

  if (!overlay)
    return;
  t = adw_toast_new (title);
  adw_toast_set_timeout (t, offer_switch ? 10 : 5);
  if (offer_switch)
    {
      adw_toast_set_button_label (t, _("_Switch"));
      g_signal_connect_object (t, "button-clicked", G_CALLBACK (on_toast_switch), self, 0);
    }
  self->n_toasts++;
  g_signal_connect_object (t, "dismissed", G_CALLBACK (on_toast_dismissed), self, 0);
  adw_toast_overlay_add_toast (ADW_TOAST_OVERLAY (overlay), t);
}

static void
download_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  DownloadJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr (TesseraModelPicker) self = g_weak_ref_get (&job->picker->ref);
  g_autoptr (GError) error = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);

  (void) source;
  (void) user_data;
  if (!self)
    return;
  g_clear_object (&self->download_cancellable);
  set_downloading (self, FALSE);
  tessera_model_picker_rescan (self);
  update_download_label (self);
  if (ok)
    {
      g_free (self->finished_dir);
      self->finished_dir = g_strdup (job->dir);
      show_status (self, _("Downloaded. Pick it in the list above, or use the button on the notice."), FALSE);
      toast (self, _("Meissonic is downloaded"), TRUE);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      show_status (self, _("Paused. Resume continues where it stopped, also after a restart."), FALSE);
    }
  else
    {
      g_autofree char *msg = g_strdup_printf (_("Download failed: %s"), error->message);
      show_status (self, msg, TRUE);
      if (!gtk_widget_get_visible (GTK_WIDGET (self->popover)))
        toast (self, msg, FALSE);
    }
}
#endif

static void
on_download_clicked (TesseraModelPicker *self)
{
#ifdef TESSERA_HAVE_HUB
  g_autoptr (GTask) task = NULL;
  DownloadJob *job;

  if (self->download_cancellable)
    return;
  self->download_cancellable = g_cancellable_new ();
  job = g_new0 (DownloadJob, 1);
  job->picker = g_atomic_rc_box_new0 (PickerRef);
  g_weak_ref_init (&job->picker->ref, self);
  job->dir = tessera_hub_default_dir (CATALOGUE_REPO);
  /* No source object: the task must not keep the widget alive; the weak ref finds it. */
  task = g_task_new (NULL, self->download_cancellable, download_done, NULL);
  g_task_set_task_data (task, job, download_job_free);
  g_task_set_return_on_cancel (task, FALSE);
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  gtk_progress_bar_set_text (self->progress_bar, _("Listing the files…"));
  show_status (self, NULL, FALSE);
  set_downloading (self, TRUE);
  g_task_run_in_thread (task, download_thread);
#else
  set_downloading (self, FALSE);
  show_status (self, _("This build has no downloads (libsoup 3 was missing)"), TRUE);
#endif
}

#ifdef TESSERA_HAVE_HUB
/* Deletes a folder and what it holds, without following links. */
static gboolean
delete_tree (GFile *dir, GError **error)
{
  g_autoptr (GFileEnumerator) e = g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME ","
                                                             G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                                             G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, error);
  GFileInfo *info;
  GFile *child;

  if (!e)
    return FALSE;
  while (g_file_enumerator_iterate (e, &info, &child, NULL, error) && info)
    if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY ? !delete_tree (child, error)
                                                                  : !g_file_delete (child, NULL, error))
      return FALSE;
  return !(error && *error) && g_file_delete (dir, NULL, error);
}
#endif

/* Cancel for good: the partial download's folder goes (only a folder that a download
 * started and never finished: it has the state file and no model_index.json). */
static void
on_discard_clicked (TesseraModelPicker *self)
{
#ifdef TESSERA_HAVE_HUB
  g_autofree char *dir = tessera_hub_default_dir (CATALOGUE_REPO);
  g_autofree char *state = g_build_filename (dir, ".tessera-download.json", NULL);
  g_autoptr (GFile) folder = g_file_new_for_path (dir);
  g_autoptr (GError) error = NULL;

  if (self->download_cancellable || has_model_index (dir) || !g_file_test (state, G_FILE_TEST_EXISTS))
    return;
  if (delete_tree (folder, &error))
    show_status (self, _("The partial download was discarded."), FALSE);
  else
    {
      g_autofree char *msg = g_strdup_printf (_("The partial download could not be discarded: %s"),
                                              error->message);
      show_status (self, msg, TRUE);
    }
  update_download_label (self);
#else
  (void) self;
#endif
}

static void
on_pause_clicked (TesseraModelPicker *self)
{
  if (self->download_cancellable)
    g_cancellable_cancel (self->download_cancellable);
}

/* ---- class ---- */

static void
tessera_model_picker_map (GtkWidget *widget)
{
  TesseraModelPicker *self = TESSERA_MODEL_PICKER (widget);

  GTK_WIDGET_CLASS (tessera_model_picker_parent_class)->map (widget);
  /* The window's settings (tests give it their own), once the window is built. */
  if (!self->settings)
    {
      GtkRoot *root = gtk_widget_get_root (widget);
      GSettings *s = NULL;

      if (root && g_object_class_find_property (G_OBJECT_GET_CLASS (root), "settings"))
        g_object_get (root, "settings", &s, NULL);
      self->settings = s && G_IS_SETTINGS (s) ? s : g_settings_new ("io.github.tessera.Tessera");
      if (s && self->settings != s)
        g_object_unref (s);
      g_signal_connect_object (self->settings, "changed::model-folder",
                               G_CALLBACK (tessera_model_picker_rescan), self, G_CONNECT_SWAPPED);
      tessera_model_picker_rescan (self);
    }
}

static void
tessera_model_picker_dispose (GObject *object)
{
  TesseraModelPicker *self = TESSERA_MODEL_PICKER (object);

  /* Stops a download; its .incomplete files stay for the next one. */
  if (self->download_cancellable)
    g_cancellable_cancel (self->download_cancellable);
  g_clear_object (&self->download_cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), TESSERA_TYPE_MODEL_PICKER);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (tessera_model_picker_parent_class)->dispose (object);
}

static void
tessera_model_picker_finalize (GObject *object)
{
  TesseraModelPicker *self = TESSERA_MODEL_PICKER (object);

  g_ptr_array_unref (self->models);
  g_free (self->download_dir);
  g_free (self->finished_dir);
  G_OBJECT_CLASS (tessera_model_picker_parent_class)->finalize (object);
}

static void
tessera_model_picker_class_init (TesseraModelPickerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_model_picker_dispose;
  object_class->finalize = tessera_model_picker_finalize;
  widget_class->map = tessera_model_picker_map;
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_template_from_resource (widget_class, APP_RESOURCE_PATH "/tessera-model-picker.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, TesseraModelPicker, name)
  BIND (button);
  BIND (title_label);
  BIND (subtitle_label);
  BIND (popover);
  BIND (model_list);
  BIND (catalogue_row);
  BIND (download_button);
  BIND (pause_button);
  BIND (discard_button);
  BIND (progress_bar);
  BIND (status_label);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, on_row_activated);
  gtk_widget_class_bind_template_callback (widget_class, on_popover_show);
  gtk_widget_class_bind_template_callback (widget_class, on_download_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_pause_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_discard_clicked);
}

static void
tessera_model_picker_init (TesseraModelPicker *self)
{
  self->models = g_ptr_array_new_with_free_func ((GDestroyNotify) model_entry_free);
  gtk_widget_init_template (GTK_WIDGET (self));
  update_download_label (self);
}

GtkWidget *
tessera_model_picker_new (void)
{
  return g_object_new (TESSERA_TYPE_MODEL_PICKER, NULL);
}

/* ---- for tests ---- */

guint
_tessera_model_picker_get_n_models (TesseraModelPicker *self)
{
  return self->models->len;
}

const char *
_tessera_model_picker_get_model_name (TesseraModelPicker *self, guint i)
{
  g_return_val_if_fail (i < self->models->len, NULL);
  return ((ModelEntry *) g_ptr_array_index (self->models, i))->name;
}

const char *
_tessera_model_picker_get_model_dir (TesseraModelPicker *self, guint i)
{
  g_return_val_if_fail (i < self->models->len, NULL);
  return ((ModelEntry *) g_ptr_array_index (self->models, i))->dir;
}

void
_tessera_model_picker_activate_model (TesseraModelPicker *self, guint i)
{
  GtkListBoxRow *row = gtk_list_box_get_row_at_index (self->model_list, (int) i);

  g_return_if_fail (row != NULL);
  g_signal_emit_by_name (self->model_list, "row-activated", row);
}

const char *
_tessera_model_picker_get_title (TesseraModelPicker *self)
{
  return gtk_label_get_label (self->title_label);
}

const char *
_tessera_model_picker_get_subtitle (TesseraModelPicker *self)
{
  return gtk_label_get_label (self->subtitle_label);
}

GtkPopover *
_tessera_model_picker_get_popover (TesseraModelPicker *self)
{
  return self->popover;
}

GtkButton *
_tessera_model_picker_get_download_button (TesseraModelPicker *self)
{
  return self->download_button;
}

GtkButton *
_tessera_model_picker_get_pause_button (TesseraModelPicker *self)
{
  return self->pause_button;
}

GtkButton *
_tessera_model_picker_get_discard_button (TesseraModelPicker *self)
{
  return self->discard_button;
}

gboolean
_tessera_model_picker_is_downloading (TesseraModelPicker *self)
{
  return self->download_cancellable != NULL;
}

double
_tessera_model_picker_get_fraction (TesseraModelPicker *self)
{
  return gtk_progress_bar_get_fraction (self->progress_bar);
}

const char *
_tessera_model_picker_get_status (TesseraModelPicker *self)
{
  return gtk_label_get_label (self->status_label);
}

guint
_tessera_model_picker_get_n_toasts (TesseraModelPicker *self)
{
  return self->n_toasts;
}

gboolean
_tessera_model_picker_switch_to_download (TesseraModelPicker *self)
{
  if (!self->finished_dir)
    return FALSE;
  switch_to (self, self->finished_dir);
  return TRUE;
}
