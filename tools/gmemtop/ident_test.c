// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of the names read from /proc: QEMU's -name and -uuid in
 * every form it takes, libvirt's scopes, cgroup v2 paths, and command
 * lines no QEMU would have: garbage, not UTF-8, very long.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ident.h"
#include "kselftest_harness.h"

#define UUID	"1234abcd-0000-4000-8000-00000000beef"

/* A string literal's bytes with its NULs, the last one too. */
#define CMDLINE(s)	s, sizeof(s)

static struct vm_ident parse(const char *buf, size_t len)
{
	struct vm_ident id;

	memset(&id, 'x', sizeof(id));
	ident_parse_cmdline(buf, len, &id);
	return id;
}

TEST(name_alone)
{
	struct vm_ident id = parse(CMDLINE("qemu-system-x86_64\0-name\0foo"));

	ASSERT_STREQ("foo", id.name);
	ASSERT_STREQ("", id.uuid);
}

TEST(name_with_guest_key_as_libvirt_gives_it)
{
	struct vm_ident id = parse(CMDLINE(
		"/usr/bin/qemu-system-x86_64\0-name\0"
		"guest=demo-vm,debug-threads=on\0-S\0-uuid\0" UUID));

	ASSERT_STREQ("demo-vm", id.name);
	ASSERT_STREQ(UUID, id.uuid);
}

TEST(name_with_process_key)
{
	struct vm_ident id = parse(CMDLINE(
		"qemu-kvm\0-m\0" "1G\0-name\0foo,process=qemu-foo"));

	ASSERT_STREQ("foo", id.name);
}

TEST(double_dash_options_and_the_last_one_wins)
{
	struct vm_ident id = parse(CMDLINE(
		"/usr/libexec/qemu-kvm\0--name\0first\0--uuid\0"
		"1234ABCD-0000-4000-8000-00000000BEEF\0-name\0guest=second"));

	ASSERT_STREQ("second", id.name);
	ASSERT_STREQ(UUID, id.uuid);
}

TEST(doubled_comma_is_a_comma_of_the_name)
{
	struct vm_ident id = parse(CMDLINE(
		"qemu-system-aarch64\0-name\0a,,b,debug-threads=on"));

	ASSERT_STREQ("a,b", id.name);
}

TEST(not_qemu_has_no_name)
{
	struct vm_ident id = parse(CMDLINE(
		"cloud-hypervisor\0-name\0foo\0-uuid\0" UUID));

	ASSERT_STREQ("", id.name);
	ASSERT_STREQ("", id.uuid);
}

TEST(malformed_uuid_and_missing_values_are_ignored)
{
	struct vm_ident id = parse(CMDLINE(
		"qemu-system-x86_64\0-uuid\0" "1234abcd-0000-4000-8000-00000000beeg"
		"\0-uuid\0short\0-name"));

	ASSERT_STREQ("", id.name);
	ASSERT_STREQ("", id.uuid);
}

TEST(unterminated_last_argument)
{
	static const char buf[] = "qemu-system-x86_64\0-name\0abc";
	struct vm_ident id = parse(buf, sizeof(buf) - 1);

	ASSERT_STREQ("abc", id.name);
	/* Cut inside the value: what was read. */
	id = parse(buf, sizeof(buf) - 2);
	ASSERT_STREQ("ab", id.name);
}

TEST(name_bytes_are_kept_as_they_are)
{
	struct vm_ident id = parse(CMDLINE(
		"qemu-system-x86_64\0-name\0guest=q\"\\\n\xff\xc3\xa9"));

	ASSERT_STREQ("q\"\\\n\xff\xc3\xa9", id.name);
}

TEST(very_long_command_line_and_name)
{
	size_t len = 1 << 20, at = 0;
	char *buf = calloc(1, len);
	struct vm_ident id;

	ASSERT_NE(NULL, buf);
	at += sprintf(buf, "qemu-system-x86_64") + 1;
	memset(buf + at, 'a', 500000);	/* one huge argument */
	at += 500001;
	at += sprintf(buf + at, "-name") + 1;
	memset(buf + at, 'n', 10000);	/* a huge name, cut */
	at += 10001;
	ASSERT_LT(at, len);
	id = parse(buf, len);
	ASSERT_EQ(IDENT_NAME_LEN - 1, strlen(id.name));
	ASSERT_EQ('n', id.name[0]);
	free(buf);
}

TEST(garbage_never_overflows)
{
	char buf[4096];
	struct vm_ident id;
	unsigned int i, round;

	srand(1);
	for (round = 0; round < 2000; round++) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = "qemu-name,=\0guest\\x2d"[rand() % 21];
		memcpy(buf, "qemu", 4);
		id = parse(buf, rand() % sizeof(buf));
		ASSERT_LT(strlen(id.name), IDENT_NAME_LEN);
		ASSERT_LT(strlen(id.uuid), IDENT_UUID_LEN);
	}
	id = parse(buf, 0);
	ASSERT_STREQ("", id.name);
}

TEST(cgroup_v2_line_among_v1_ones)
{
	static const char file[] = "12:pids:/user.slice\n"
				   "1:name=systemd:/user.slice/x.scope\n"
				   "0::/machine.slice/vm.scope\n";
	char path[IDENT_CGROUP_LEN];

	ASSERT_TRUE(ident_parse_cgroup(file, sizeof(file) - 1, path,
				       sizeof(path)));
	ASSERT_STREQ("/machine.slice/vm.scope", path);
	/* Without its newline, and a root outside the namespace. */
	ASSERT_TRUE(ident_parse_cgroup("0::/../other", 12, path, sizeof(path)));
	ASSERT_STREQ("/../other", path);
	ASSERT_TRUE(ident_parse_cgroup("0::/\n", 5, path, sizeof(path)));
	ASSERT_STREQ("/", path);
}

TEST(cgroup_v1_only_or_garbage)
{
	char path[16];

	ASSERT_FALSE(ident_parse_cgroup("3:cpu:/a\n", 9, path, sizeof(path)));
	ASSERT_STREQ("", path);
	ASSERT_FALSE(ident_parse_cgroup("\n\n0:\n0::", 8, path, sizeof(path)));
	ASSERT_TRUE(ident_parse_cgroup("0::/a-very-long-cgroup", 22, path,
				       sizeof(path)));
	ASSERT_STREQ("/a-very-long-cg", path);
}

TEST(libvirt_scope_names_the_domain)
{
	char name[IDENT_NAME_LEN] = "";

	ASSERT_TRUE(ident_cgroup_domain(
		"/machine.slice/machine-qemu\\x2d3\\x2ddemo\\x2dvm.scope/libvirt/emulator",
		name, sizeof(name)));
	ASSERT_STREQ("demo-vm", name);
	ASSERT_TRUE(ident_cgroup_domain(
		"/machine.slice/machine-qemu\\x2d12\\x2dweb.scope", name,
		sizeof(name)));
	ASSERT_STREQ("web", name);
	/* Before libvirt 1.3: no id. */
	ASSERT_TRUE(ident_cgroup_domain("/machine.slice/machine-qemu\\x2dold.scope",
					name, sizeof(name)));
	ASSERT_STREQ("old", name);
}

TEST(other_scopes_name_no_domain)
{
	char name[IDENT_NAME_LEN] = "kept";

	ASSERT_FALSE(ident_cgroup_domain("/user.slice/session-2.scope", name,
					 sizeof(name)));
	ASSERT_FALSE(ident_cgroup_domain("/machine.slice/machine-qemu.scope",
					 name, sizeof(name)));
	ASSERT_FALSE(ident_cgroup_domain("/machine.slice/machine-qemu\\x2d.scope",
					 name, sizeof(name)));
	ASSERT_FALSE(ident_cgroup_domain("", name, sizeof(name)));
	ASSERT_FALSE(ident_cgroup_domain("/machine-qemu\\x2", name,
					 sizeof(name)));
	ASSERT_STREQ("kept", name);
}

TEST(under_a_cgroup)
{
	ASSERT_TRUE(ident_cgroup_under("/a/b", "/a"));
	ASSERT_TRUE(ident_cgroup_under("/a", "/a"));
	ASSERT_TRUE(ident_cgroup_under("/a/b/c", "/a/b"));
	ASSERT_FALSE(ident_cgroup_under("/ab", "/a"));
	ASSERT_FALSE(ident_cgroup_under("/b", "/a"));
	ASSERT_FALSE(ident_cgroup_under("", "/a"));
	ASSERT_TRUE(ident_cgroup_under("/x", "/"));
	ASSERT_FALSE(ident_cgroup_under("", "/"));
}

TEST(this_process_is_no_qemu_but_has_a_cgroup)
{
	struct vm_ident id;

	ident_read(getpid(), &id);
	ASSERT_STREQ("", id.name);
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
		ASSERT_EQ('/', id.cgroup[0]);
	/* A pid no process has: nothing, and no harm. */
	ident_read(0x3fffffff, &id);
	ASSERT_STREQ("", id.cgroup);
}

TEST(cgroup_filter_must_be_a_cgroup2_directory)
{
	char path[IDENT_CGROUP_LEN];
	int fd;

	ASSERT_GT(0, ident_open_cgroup("/nonexistent/cg", path, sizeof(path),
				       &fd));
	ASSERT_GT(0, ident_open_cgroup("/tmp", path, sizeof(path), &fd));
	ASSERT_EQ(-1, fd);
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK))
		return;
	ASSERT_EQ(0, ident_open_cgroup("/sys/fs/cgroup/", path, sizeof(path),
				       &fd));
	ASSERT_STREQ("/", path);
	close(fd);
}

TEST_HARNESS_MAIN
