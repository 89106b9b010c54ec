// SPDX-License-Identifier: GPL-2.0
/* The one JSON writer; the escaping rule is in json.h. */
#include <math.h>

#include "json.h"

/*
 * The length of the valid UTF-8 sequence that starts with byte @c[0] >=
 * 0x80, within @max bytes; 0 if there is none: overlong forms,
 * surrogates and code points above U+10FFFF are not valid.
 */
static size_t utf8_length(const unsigned char *c, size_t max)
{
	unsigned int code, min;
	size_t len, i;

	if (c[0] >= 0xc2 && c[0] <= 0xdf)
		len = 2, code = c[0] & 0x1f, min = 0x80;
	else if (c[0] >= 0xe0 && c[0] <= 0xef)
		len = 3, code = c[0] & 0x0f, min = 0x800;
	else if (c[0] >= 0xf0 && c[0] <= 0xf4)
		len = 4, code = c[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > max)
		return 0;
	for (i = 1; i < len; i++) {
		if ((c[i] & 0xc0) != 0x80)
			return 0;
		code = code << 6 | (c[i] & 0x3f);
	}
	if (code < min || code > 0x10ffff ||
	    (code >= 0xd800 && code <= 0xdfff))
		return 0;
	return len;
}

void put_utf8_quoted(FILE *out, const char *s, size_t max, utf8_put_fn put)
{
	const unsigned char *c = (const unsigned char *)s;
	size_t i, len;

	fputc('"', out);
	for (i = 0; i < max && c[i]; i += len ? len : 1) {
		len = c[i] < 0x80 ? 1 : utf8_length(c + i, max - i);
		put(out, c + i, len);
	}
	fputc('"', out);
}

/* JSON escapes quote, backslash and control characters. */
static void put_json_char(FILE *out, const unsigned char *c, size_t len)
{
	if (!len)
		fputs("\\ufffd", out);
	else if (*c == '"' || *c == '\\')
		fprintf(out, "\\%c", *c);
	else if (*c < ' ')
		fprintf(out, "\\u%04x", *c);
	else
		fwrite(c, 1, len, out);
}

static void put_string(FILE *out, const char *s, size_t max)
{
	put_utf8_quoted(out, s, max, put_json_char);
}

/* The separator and the key of the next member. */
static void member(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->out);
	j->first[j->depth] = false;
	if (key) {
		put_string(j->out, key, (size_t)-1);
		fputc(':', j->out);
	}
}

void json_open(struct json *j, const char *key, char bracket)
{
	member(j, key);
	fputc(bracket, j->out);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->first[++j->depth] = true;
}

void json_close(struct json *j, char bracket)
{
	fputc(bracket, j->out);
	if (j->depth > 0)
		j->depth--;
}

void json_uint(struct json *j, const char *key, unsigned long long v)
{
	member(j, key);
	fprintf(j->out, "%llu", v);
}

void json_int(struct json *j, const char *key, long long v)
{
	member(j, key);
	fprintf(j->out, "%lld", v);
}

void json_double(struct json *j, const char *key, double v, int decimals)
{
	member(j, key);
	if (isfinite(v))
		fprintf(j->out, "%.*f", decimals, v);
	else
		fputs("null", j->out);
}

void json_bool(struct json *j, const char *key, bool v)
{
	member(j, key);
	fputs(v ? "true" : "false", j->out);
}

void json_null(struct json *j, const char *key)
{
	member(j, key);
	fputs("null", j->out);
}

void json_string(struct json *j, const char *key, const char *s, size_t max)
{
	member(j, key);
	put_string(j->out, s, max);
}

void json_begin(struct json *j, FILE *out, double timestamp)
{
	j->out = out;
	j->depth = 0;
	j->first[0] = true;
	json_open(j, NULL, '{');
	json_uint(j, "version", JSON_VERSION);
	json_double(j, "timestamp", timestamp, 6);
}

void json_end(struct json *j)
{
	json_close(j, '}');
	fputc('\n', j->out);
}
