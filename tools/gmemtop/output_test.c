// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of what the outputs make of the kernel's values: the
 * name of a conversion's attributes, and bytes as JSON strings.
 */
#include <string.h>

#include "json.h"
#include "report.h"
#include "kselftest_harness.h"

TEST(only_the_private_bit_makes_memory_private)
{
	ASSERT_STREQ(attributes_name(0), "shared");
	ASSERT_STREQ(attributes_name(KVM_MEMORY_ATTRIBUTE_PRIVATE), "private");
	/* Attribute bits to come say nothing of the direction. */
	ASSERT_STREQ(attributes_name(1 << 0 | 1 << 1 | 1 << 4), "shared");
	ASSERT_STREQ(attributes_name(~0ULL), "private");
}

/* @s, at most @max bytes of it, as a JSON string; until the next call. */
static const char *json_of(const char *s, size_t max)
{
	static char text[256];
	struct json j = { .first = { true } };

	memset(text, 0, sizeof(text));
	j.out = fmemopen(text, sizeof(text) - 1, "w");
	json_string(&j, NULL, s, max);
	fclose(j.out);
	return text;
}

#define JSON_OF(s)	json_of(s, sizeof(s) - 1)

TEST(json_escapes_only_what_it_must)
{
	ASSERT_STREQ(JSON_OF("qemu-kvm"), "\"qemu-kvm\"");
	ASSERT_STREQ(JSON_OF("q\"b\\"), "\"q\\\"b\\\\\"");
	ASSERT_STREQ(JSON_OF("\x01\t\n\x1f"), "\"\\u0001\\u0009\\u000a\\u001f\"");
	/* DEL is no control character to JSON. */
	ASSERT_STREQ(JSON_OF("a\x7f"), "\"a\x7f\"");
	/* A NUL ends the name. */
	ASSERT_STREQ(JSON_OF("ab\0cd"), "\"ab\"");
}

/* Two, three and four bytes: U+00FC, U+20AC, U+1D11E. */
TEST(valid_utf8_passes_as_it_is)
{
	ASSERT_STREQ(JSON_OF("Z\xc3\xbcrich"), "\"Z\xc3\xbcrich\"");
	ASSERT_STREQ(JSON_OF("\xe2\x82\xac" "5"), "\"\xe2\x82\xac" "5\"");
	ASSERT_STREQ(JSON_OF("\xf0\x9d\x84\x9e"), "\"\xf0\x9d\x84\x9e\"");
	/* The first and last code points of each length. */
	ASSERT_STREQ(JSON_OF("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"),
		     "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\"");
	ASSERT_STREQ(JSON_OF("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
		     "\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"");
}

/* Each byte of no valid sequence is one U+FFFD. */
TEST(invalid_bytes_become_replacement_characters)
{
	static const struct {
		const char *bytes;
		size_t len;
		const char *json;
	} cases[] = {
		/* Cut short by the end of the name, or by the next byte. */
		{ "ab\xe2\x82", 4, "\"ab\\ufffd\\ufffd\"" },
		{ "\xe2\x82x", 3, "\"\\ufffd\\ufffdx\"" },
		/* Cut short by @max: the rest is not read. */
		{ "a\xc3\xbc", 2, "\"a\\ufffd\"" },
		/* Overlong forms of '/' and of U+0800 less one. */
		{ "\xc0\xaf", 2, "\"\\ufffd\\ufffd\"" },
		{ "\xe0\x9f\xbf", 3, "\"\\ufffd\\ufffd\\ufffd\"" },
		{ "\xf0\x8f\xbf\xbf", 4,
		  "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		/* A surrogate, and past U+10FFFF. */
		{ "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" },
		{ "\xf4\x90\x80\x80", 4,
		  "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		/* A lone continuation byte, and bytes UTF-8 never has. */
		{ "\x80", 1, "\"\\ufffd\"" },
		{ "\xfe\xff", 2, "\"\\ufffd\\ufffd\"" },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		EXPECT_STREQ(json_of(cases[i].bytes, cases[i].len),
			     cases[i].json) {
			TH_LOG("case %u", i);
		}
	}
}

TEST_HARNESS_MAIN
