/* SPDX-License-Identifier: MIT
 *
 * ts-backend — the backend-independent part of ts-backend.h: destroying a backend
 * through its vtable. Each backend's constructor lives with its implementation
 * (ts_backend_cpu_new in engine/cpu/).
 */
#include "ts-backend.h"

#include <stddef.h>

void
ts_backend_free (ts_backend *be)
{
  if (!be || !be->ops)
    return;
  if (be->ops->destroy)
    be->ops->destroy (be->impl);
  be->ops = NULL;
  be->impl = NULL;
}
