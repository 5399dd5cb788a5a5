/* checkpoint_internal.h: helpers shared by the safetensors / checkpoint sources. */
#ifndef CLBNB_CHECKPOINT_INTERNAL_H
#define CLBNB_CHECKPOINT_INTERNAL_H

#include "internal.h"

/* Fills err (if not NULL) and returns status. */
CLBNB_INTERNAL clbnb_status clbnb_ferr(clbnb_file_error *err, clbnb_status status, clbnb_file_error_code code,
                                       const char *tensor, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
