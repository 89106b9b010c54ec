/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one JSON writer of gmemtop's every mode.  Strings are bytes from
 * the kernel (process names, fdinfo): valid UTF-8 passes as it is, '"'
 * and '\' are escaped with a backslash, control characters (below 0x20)
 * as \u00XX, and each byte that belongs to no valid UTF-8 sequence (one
 * cut short, an overlong form, a surrogate) is written as \ufffd, the
 * replacement character, as a UTF-8 decoder shows it.  The output is
 * valid JSON in valid UTF-8 for any name.
 */
#ifndef GMEMTOP_JSON_H
#define GMEMTOP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The layout version of every object gmemtop prints ("version"). */
#define JSON_VERSION	1
#define JSON_MAX_DEPTH	8

struct json {
	FILE *out;
	int depth;
	bool first[JSON_MAX_DEPTH];	/* no member yet at this depth */
};

/*
 * @key names the member inside an object and is NULL inside an array.
 * json_open() takes '{' or '[', json_close() the matching '}' or ']'.
 */
void json_open(struct json *j, const char *key, char bracket);
void json_close(struct json *j, char bracket);
void json_uint(struct json *j, const char *key, unsigned long long v);
void json_int(struct json *j, const char *key, long long v);
/* With @decimals digits after the point; null when not finite. */
void json_double(struct json *j, const char *key, double v, int decimals);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
/* At most @max bytes of @s, fewer when it holds a NUL. */
void json_string(struct json *j, const char *key, const char *s, size_t max);

/*
 * Writes at most @max bytes of @s between double quotes, one character at
 * a time through @put: a valid UTF-8 sequence of @len bytes, or with @len
 * 0 one byte that starts none.  JSON, CSV and the metrics' label values
 * differ only in what @put escapes.
 */
typedef void (*utf8_put_fn)(FILE *out, const unsigned char *c, size_t len);
void put_utf8_quoted(FILE *out, const char *s, size_t max, utf8_put_fn put);

/* Opens a top-level object with "version" and the wall-clock "timestamp". */
void json_begin(struct json *j, FILE *out, double timestamp);
/* Closes it and ends the line (the caller flushes). */
void json_end(struct json *j);

#endif
