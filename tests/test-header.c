/* SPDX-License-Identifier: MIT
 *
 * Compiles tessera.h on its own as strict C11 (-pedantic -Werror, see meson.build) and
 * checks a few of its promises at run time. */
#include "tessera.h"

#include <stdio.h>
#include <string.h>

int
main (void)
{
  if (TS_OK != 0 || TS_ERR_FORMAT >= 0)
    return 1;
  if (strcmp (ts_status_name (TS_ERR_FORMAT), "TS_ERR_FORMAT") != 0)
    return 1;
  if (ts_dtype_size (TS_DTYPE_BF16) != 2 || strcmp (ts_dtype_name (TS_DTYPE_F32), "F32") != 0)
    return 1;
  if (ts_dtype_name (TS_DTYPE_COUNT) != NULL || ts_dtype_size ((ts_dtype) 1000) != 0)
    return 1;
  printf ("tessera.h %s compiles standalone\n", TS_VERSION_STRING);
  return 0;
}
