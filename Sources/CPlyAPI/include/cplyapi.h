/* Swift's view of the C API header (Include/ply/ply.h) plus the error slot the
 * Swift implementation fills. Internal to libPlyC: not installed. */
#ifndef CPLYAPI_H
#define CPLYAPI_H
#include "../../../Include/ply/ply.h"

/** Records `message` (copied) as this thread's ply_last_error(). */
void plycapi_set_error(const char *message);

#endif
