// SPDX-License-Identifier: GPL-2.0
/*
 * --openmetrics ADDR:PORT: the latest report's counters and histograms,
 * served over HTTP by libmicrohttpd in the Prometheus text exposition
 * format, so that a fleet is watched by the Prometheus users already run.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

struct metrics_server {
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;
	char *page;		/* the latest exposition, under lock */
	size_t len;
};

int metrics_parse_addr(const char *arg, struct sockaddr_in *addr)
{
	char host[64];
	const char *colon = strrchr(arg, ':');
	char *end;
	long port;

	if (!colon || colon - arg >= (long)sizeof(host))
		return -1;
	memcpy(host, arg, colon - arg);
	host[colon - arg] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 1 || port > 65535)
		return -1;

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_port = htons(port);
	if (!host[0])
		addr->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &addr->sin_addr) != 1)
		return -1;
	return 0;
}

/* Label values may hold '\', '"' or a newline: escape them. */
static void print_label(FILE *out, const char *name, const char *value)
{
	fprintf(out, "%s=\"", name);
	for (; *value; value++) {
		if (*value == '\\' || *value == '"')
			fputc('\\', out);
		if (*value == '\n')
			fputs("\\n", out);
		else
			fputc(*value, out);
	}
	fputc('"', out);
}

static void print_labels(FILE *out, const struct file_row *row,
			 const char *extra_name, const char *extra_value)
{
	char num[32];

	fputc('{', out);
	snprintf(num, sizeof(num), "%u", row->now.pid);
	print_label(out, "pid", num);
	fputc(',', out);
	print_label(out, "comm", row->now.comm);
	snprintf(num, sizeof(num), "%u", row->now.vm);
	fputc(',', out);
	print_label(out, "vm", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)row->ino);
	fputc(',', out);
	print_label(out, "ino", num);
	if (extra_name) {
		fputc(',', out);
		print_label(out, extra_name, extra_value);
	}
	fputc('}', out);
}

static void print_family(FILE *out, const char *name, const char *type,
			 const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One counter family with a value per guest_memfd and direction. */
static void print_two_way(FILE *out, const struct report *r, const char *name,
			  const char *help, size_t offset)
{
	static const char *const dirs[2] = { "to_shared", "to_private" };
	int i, d;

	print_family(out, name, "counter", help);
	for (i = 0; i < r->nr_files; i++) {
		const __u64 *v = (const void *)&r->files[i].now + offset;

		for (d = 0; d < 2; d++) {
			fputs(name, out);
			print_labels(out, &r->files[i], "direction", dirs[d]);
			fprintf(out, " %llu\n", (unsigned long long)v[d]);
		}
	}
}

static void print_counter(FILE *out, const struct report *r, const char *name,
			  const char *help, size_t offset)
{
	int i;

	print_family(out, name, "counter", help);
	for (i = 0; i < r->nr_files; i++) {
		fputs(name, out);
		print_labels(out, &r->files[i], NULL, NULL);
		fprintf(out, " %llu\n", *(const unsigned long long *)
			((const void *)&r->files[i].now + offset));
	}
}

static void print_sizes(FILE *out, const struct report *r)
{
	int i;

	print_family(out, "gmem_memory_bytes", "gauge",
		     "Shared and private memory of the guest_memfd (fdinfo).");
	for (i = 0; i < r->nr_files; i++) {
		const struct file_row *row = &r->files[i];

		if (row->fdinfo.shared_pages < 0)
			continue;
		fputs("gmem_memory_bytes", out);
		print_labels(out, row, "attribute", "shared");
		fprintf(out, " %lld\n", row->fdinfo.shared_pages * 4096);
		fputs("gmem_memory_bytes", out);
		print_labels(out, row, "attribute", "private");
		fprintf(out, " %lld\n", row->fdinfo.private_pages * 4096);
	}
}

static void print_phases(FILE *out, const struct report *r)
{
	unsigned int p;
	int i;

	print_family(out, "gmem_conversion_phase_seconds_total", "counter",
		     "Time successful conversions spent in each phase.");
	for (i = 0; i < r->nr_files; i++) {
		for (p = 0; p < GMEM_NR_PHASES; p++) {
			fputs("gmem_conversion_phase_seconds_total", out);
			print_labels(out, &r->files[i], "phase", phase_name(p));
			fprintf(out, " %.9f\n", r->files[i].now.phase_ns[p] / 1e9);
		}
	}
}

/*
 * The latency histogram at power-of-two bounds from 1 us: the fine buckets
 * split every power of two, so the cumulative counts there are exact.
 */
static void print_latency(FILE *out, const struct report *r)
{
	const char *name = "gmem_conversion_latency_seconds";
	unsigned int log2, b;
	char le[32];
	int i;

	print_family(out, name, "histogram",
		     "Latency of successful KVM_SET_MEMORY_ATTRIBUTES2 calls.");
	for (i = 0; i < r->nr_files; i++) {
		const struct gmem_file_stats *s = &r->files[i].now;
		unsigned long long below = 0;

		for (log2 = 10, b = 0; log2 <= GMEM_HIST_MAX_LOG2 + 1; log2++) {
			for (; b < gmem_hist_bucket(1ULL << log2); b++)
				below += s->hist[b];
			snprintf(le, sizeof(le), "%.9g", (1ULL << log2) / 1e9);
			fprintf(out, "%s_bucket", name);
			print_labels(out, &r->files[i], "le", le);
			fprintf(out, " %llu\n", below);
		}
		fprintf(out, "%s_bucket", name);
		print_labels(out, &r->files[i], "le", "+Inf");
		fprintf(out, " %llu\n", hist_total(s->hist));
		fprintf(out, "%s_sum", name);
		print_labels(out, &r->files[i], NULL, NULL);
		fprintf(out, " %.9f\n", s->lat_sum_ns / 1e9);
		fprintf(out, "%s_count", name);
		print_labels(out, &r->files[i], NULL, NULL);
		fprintf(out, " %llu\n", hist_total(s->hist));
	}
}

void print_openmetrics(FILE *out, const struct report *r)
{
	print_two_way(out, r, "gmem_conversions_total",
		      "Successful conversions that changed pages.",
		      offsetof(struct gmem_file_stats, conversions));
	print_two_way(out, r, "gmem_pages_converted_total",
		      "Pages whose attributes conversions changed.",
		      offsetof(struct gmem_file_stats, pages));
	print_counter(out, r, "gmem_eagain_total",
		      "Conversions that failed with EAGAIN.",
		      offsetof(struct gmem_file_stats, eagain));
	print_counter(out, r, "gmem_errors_total",
		      "Conversions that failed otherwise.",
		      offsetof(struct gmem_file_stats, errors));
	print_counter(out, r, "gmem_invalidations_total",
		      "Invalidations of KVM's mappings of the guest_memfd.",
		      offsetof(struct gmem_file_stats, invalidations));
	print_sizes(out, r);
	print_phases(out, r);
	print_latency(out, r);
	print_family(out, "gmem_dropped_records_total", "counter",
		     "Snoop records the ring buffer had no room for.");
	fprintf(out, "gmem_dropped_records_total %llu\n",
		(unsigned long long)r->dropped);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *connection,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	static const char not_found[] = "try /metrics\n";
	struct metrics_server *server = cls;
	struct MHD_Response *response;
	unsigned int status = MHD_HTTP_OK;
	enum MHD_Result ret;

	if (strcmp(method, "GET"))
		return MHD_NO;

	pthread_mutex_lock(&server->lock);
	if (strcmp(url, "/metrics")) {
		status = MHD_HTTP_NOT_FOUND;
		response = MHD_create_response_from_buffer(
			sizeof(not_found) - 1, (void *)not_found,
			MHD_RESPMEM_PERSISTENT);
	} else {
		response = MHD_create_response_from_buffer(
			server->len, server->page ? server->page : "",
			MHD_RESPMEM_MUST_COPY);
	}
	pthread_mutex_unlock(&server->lock);
	if (!response)
		return MHD_NO;

	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return ret;
}

struct metrics_server *metrics_start(const struct sockaddr_in *addr)
{
	struct metrics_server *server = calloc(1, sizeof(*server));

	if (!server)
		return NULL;
	pthread_mutex_init(&server->lock, NULL);
	server->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD,
					  ntohs(addr->sin_port), NULL, NULL,
					  answer, server,
					  MHD_OPTION_SOCK_ADDR, addr,
					  MHD_OPTION_END);
	if (!server->daemon) {
		free(server);
		return NULL;
	}
	return server;
}

void metrics_update(struct metrics_server *server, const struct report *r)
{
	char *page = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&page, &len);

	if (!out)
		return;
	print_openmetrics(out, r);
	fclose(out);

	pthread_mutex_lock(&server->lock);
	free(server->page);
	server->page = page;
	server->len = len;
	pthread_mutex_unlock(&server->lock);
}

void metrics_stop(struct metrics_server *server)
{
	if (!server)
		return;
	MHD_stop_daemon(server->daemon);
	pthread_mutex_destroy(&server->lock);
	free(server->page);
	free(server);
}
