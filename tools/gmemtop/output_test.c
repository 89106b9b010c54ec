// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of what the outputs make of the kernel's values: the
 * name of a conversion's attributes.
 */
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

TEST_HARNESS_MAIN
