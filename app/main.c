/* SPDX-License-Identifier: MIT
 *
 * main.c — the `tessera` desktop app's entry point: gettext setup and the application.
 */
#include <glib/gi18n.h>
#include <locale.h>

#include "tessera-application.h"

int
main (int argc, char **argv)
{
  g_autoptr (TesseraApplication) app = NULL;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  app = tessera_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
