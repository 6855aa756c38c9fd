/* The parts of the C API that are plain C: the per-thread error message, names,
 * versions. Everything else is Swift (Sources/PlyCAPI). */
#include "cplyapi.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t error_key;
static pthread_once_t error_once = PTHREAD_ONCE_INIT;

static void make_error_key(void) { (void)pthread_key_create(&error_key, free); }

__attribute__((visibility("hidden"))) void plycapi_set_error(const char *message) {
  char *copy;
  (void)pthread_once(&error_once, make_error_key);
  copy = strdup(message ? message : "(no message)");
  if (!copy) return; /* out of memory: keep the previous message */
  free(pthread_getspecific(error_key));
  (void)pthread_setspecific(error_key, copy);
}

PLY_EXPORT const char *ply_last_error(void) {
  const char *message;
  (void)pthread_once(&error_once, make_error_key);
  message = (const char *)pthread_getspecific(error_key);
  return message ? message : "";
}

PLY_EXPORT uint32_t ply_api_version(void) { return PLY_API_VERSION; }

PLY_EXPORT const char *ply_result_name(ply_result result) {
  switch (result) {
    case PLY_OK: return "ok";
    case PLY_ERR_INVALID_ARGUMENT: return "invalid argument";
    case PLY_ERR_SHAPE: return "shape";
    case PLY_ERR_OUT_OF_MEMORY: return "out of memory";
    case PLY_ERR_UNSUPPORTED: return "unsupported";
    case PLY_ERR_NOT_FOUND: return "not found";
    case PLY_ERR_ABI: return "ABI";
    case PLY_ERR_NUMERIC: return "numeric";
    case PLY_ERR_INTERNAL: return "internal";
    case PLY_ERR_IO: return "I/O";
    default: return "unknown";
  }
}
