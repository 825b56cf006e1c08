/*-------------------------------------------------------------------------
 *
 * stream.h
 *	  Stream names, categories and the stream catalogue.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_STREAM_H
#define STRATA_STREAM_H

#include "postgres.h"

/* Longest stream name or event type accepted, in bytes */
#define STREAM_NAME_MAX_BYTES 512
#define EVENT_TYPE_MAX_BYTES  256

extern char *stream_validate_name(const char *name, int len, const char *what,
								  int max_bytes);
extern char *stream_category(const char *name);
extern char *stream_name_arg(text *arg, char **category);
extern char *stream_validate_category(const char *name, int len);

#endif /* STRATA_STREAM_H */
