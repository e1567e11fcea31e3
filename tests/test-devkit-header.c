/* SPDX-License-Identifier: MIT
 *
 * Compiles tessera-devkit.h on its own as strict C11 (-pedantic -Werror, see meson.build)
 * and checks that the status it adds keeps a name of its own. */
#include "tessera-devkit.h"

#include <stdio.h>
#include <string.h>

int
main (void)
{
  if (TS_ERR_MISMATCH >= 0 || TS_ERR_MISMATCH == TS_ERR_DEVICE)
    return 1;
  if (strcmp (ts_devkit_status_name (TS_ERR_MISMATCH), "TS_ERR_MISMATCH") != 0)
    return 1;
  if (strcmp (ts_devkit_status_name (TS_ERR_FORMAT), "TS_ERR_FORMAT") != 0)
    return 1;
  printf ("tessera-devkit.h compiles standalone\n");
  return 0;
}
