/* metrics.c - GET /metrics: reads /proc/self, the lab's counters and the tracker's totals, writes Prometheus text. */
#include "metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "http_reply.h"
#include "../analysis/leaks.h"
#include "stats.h"
#include "tracker.h"

#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_BUF 16384 /* the whole exposition: ~3 KB, ~5 KB with suspects */
#define METRICS_SUSPECTS 5 /* leak suspects shown, at most (a bounded label set) */

/* ------------------------------------------------------------ /proc/self */

/* The process_* metrics, as Prometheus' Go client reads them from /proc. */
typedef struct proc_info {
    double cpu_seconds;    /* user + system CPU time */
    double start_time;     /* seconds since the epoch: boot time + stat's starttime */
    double rss_bytes;      /* resident set (statm) */
    double vsize_bytes;    /* virtual size (statm) */
    double open_fds;       /* entries of /proc/self/fd, ours excluded */
    double max_fds;        /* RLIMIT_NOFILE, soft */
} proc_info;

/* Read up to len - 1 bytes of path into buf, NUL-terminated. read(2), not
 * stdio: no FILE to allocate. Returns the length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* Fill *p; a value that cannot be read is left at -1 (and not written). */
static void proc_read(proc_info *p)
{
    char buf[4096];
    long page = sysconf(_SC_PAGESIZE), hz = sysconf(_SC_CLK_TCK);
    unsigned long long size, resident, utime, stime, start;
    struct rlimit rl;
    const char *s;

    p->cpu_seconds = p->start_time = p->rss_bytes = p->vsize_bytes = p->open_fds = p->max_fds = -1;
    if (read_small("/proc/self/statm", buf, sizeof buf) > 0 &&
        sscanf(buf, "%llu %llu", &size, &resident) == 2) {
        p->vsize_bytes = (double)size * (double)page;
        p->rss_bytes = (double)resident * (double)page;
    }
    /* stat: "pid (comm) state ..." - comm may hold spaces and ')', so parse
     * after the last ')': fields 14, 15 (utime, stime) and 22 (starttime). */
    if (read_small("/proc/self/stat", buf, sizeof buf) > 0 && (s = strrchr(buf, ')')) != NULL &&
        sscanf(s + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
               &utime, &stime, &start) == 3) {
        p->cpu_seconds = (double)(utime + stime) / (double)hz;
        if (read_small("/proc/stat", buf, sizeof buf) > 0 && (s = strstr(buf, "\nbtime ")) != NULL)
            p->start_time = strtod(s + 7, NULL) + (double)start / (double)hz;
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            n += e->d_name[0] != '.';
        closedir(d);
        p->open_fds = n - 1; /* not the one opendir held */
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        p->max_fds = rl.rlim_cur == RLIM_INFINITY ? 1e308 : (double)rl.rlim_cur;
}

/* ------------------------------------------------------------ exposition */

typedef struct out {
    char *buf;
    size_t len, cap;
    int overflow; /* something did not fit */
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->overflow = 1;
    else
        o->len += (size_t)n;
}

/* One metric without labels: its HELP, TYPE and sample lines. A negative
 * value (could not be read) writes nothing. */
static void metric(out *o, const char *name, const char *type, const char *help, double v)
{
    if (v < 0)
        return;
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %.15g\n", name, help, name, type, name, v);
}

/* label value v with \\, \" and newlines escaped, as the exposition format asks. */
static const char *label_value(const char *v, char *buf, size_t len)
{
    size_t o = 0;
    for (; *v && o + 3 < len; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n') buf[o++] = '\\';
        buf[o++] = *v == '\n' ? 'n' : *v;
    }
    buf[o] = '\0';
    return buf;
}

/* The top leak suspects of GET /leaks (sites ranked leak or plateau, at most
 * METRICS_SUSPECTS): three gauges labelled by site and kind. Nothing when
 * the server keeps no history (tracker off). */
static void suspects(out *o)
{
    static const struct { const char *name, *help; } fam[3] = {
        { "leaklab_leak_suspect_bytes_per_request", "Growth of a suspect site's live bytes per request served (GET /leaks)." },
        { "leaklab_leak_suspect_bytes_per_second", "Growth of a suspect site's live bytes per second (GET /leaks)." },
        { "leaklab_leak_suspect_live_bytes", "Live bytes allocated at a suspect site now (GET /leaks)." },
    };
    leaks_suspect top[METRICS_SUSPECTS];
    int n = leaks_suspects(0, top, METRICS_SUSPECTS), shown = 0;
    char site[600];

    if (n < 0)
        return;
    if (n > METRICS_SUSPECTS)
        n = METRICS_SUSPECTS;
    for (int i = 0; i < n; i++)
        shown += top[i].kind == LEAKS_LEAK || top[i].kind == LEAKS_PLATEAU;
    metric(o, "leaklab_leak_suspects", "gauge", "Sites GET /leaks ranks as leak or plateau (at most 5 shown below).", shown);
    for (int f = 0; f < 3 && shown; f++) {
        put(o, "# HELP %s %s\n# TYPE %s gauge\n", fam[f].name, fam[f].help, fam[f].name);
        for (int i = 0; i < n; i++) {
            const leaks_suspect *s = &top[i];
            double v = f == 0 ? s->bytes_per_request : f == 1 ? s->bytes_per_second : (double)s->live_bytes;
            if ((s->kind != LEAKS_LEAK && s->kind != LEAKS_PLATEAU) || (f == 0 && !s->per_request))
                continue;
            put(o, "%s{site=\"%s\",kind=\"%s\"} %.15g\n", fam[f].name,
                label_value(s->site, site, sizeof site), leaks_kind_name(s->kind), v);
        }
    }
}

int metrics_format(char *buf, size_t len)
{
    out o = { buf, 0, len, 0 };
    proc_info p;
    stats_counters c;
    tracker_totals t;

    proc_read(&p);
    metric(&o, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", p.cpu_seconds);
    metric(&o, "process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds);
    metric(&o, "process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds);
    metric(&o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.vsize_bytes);
    metric(&o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.rss_bytes);
    metric(&o, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", p.start_time);

    stats_get(&c);
    put(&o, "# HELP leaklab_info The lab server's settings: mode (leaky or fixed) and leak kind (--leak).\n"
            "# TYPE leaklab_info gauge\nleaklab_info{mode=\"%s\",leak=\"%s\"} 1\n",
        strcmp(c.leak_kind, "none") == 0 ? "fixed" : "leaky", c.leak_kind);
    metric(&o, "leaklab_requests_total", "counter", "GET / requests answered (200 or 503).", (double)c.requests);
    metric(&o, "leaklab_leaked_bytes", "gauge", "Bytes the server has leaked on purpose so far (the lesson).", (double)c.leaked_bytes);
    metric(&o, "leaklab_leaked_blocks", "gauge", "Records the server has leaked on purpose so far.", (double)c.leaked_blocks);
    metric(&o, "leaklab_leak_cap_bytes", "gauge", "Leak cap (--leak-cap-mb) in bytes: past it GET / answers 503.", (double)c.leak_cap_bytes);
    metric(&o, "leaklab_capped_requests_total", "counter", "GET / requests answered 503 because the leak cap was reached.", (double)c.capped);

    tracker_get_totals(&t);
    metric(&o, "leaklab_tracker_active", "gauge", "1 when the allocation tracker records allocations.", tracker_is_active());
    metric(&o, "leaklab_tracker_live_bytes", "gauge", "Bytes of live heap blocks the tracker recorded.", (double)t.live_bytes);
    metric(&o, "leaklab_tracker_live_blocks", "gauge", "Live heap blocks the tracker recorded.", (double)t.live_blocks);
    metric(&o, "leaklab_tracker_stacks", "gauge", "Distinct call stacks the tracker has interned.", (double)t.stacks);
    metric(&o, "leaklab_tracker_lost_records_total", "counter", "Blocks the tracker could not record (its bookkeeping had no memory).", (double)t.lost_records);
    metric(&o, "leaklab_tracker_bookkeeping_bytes", "gauge", "Memory of the tracker's own tables in bytes.", (double)t.bookkeeping_bytes);
    suspects(&o);
    return o.overflow ? -1 : (int)o.len;
}

enum MHD_Result metrics_handle(struct MHD_Connection *conn)
{
    char *body;
    int n;

    if (MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s takes no parameters", METRICS_PATH);
    body = malloc(METRICS_BUF);
    if (body == NULL)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory for %s", METRICS_PATH);
    n = metrics_format(body, METRICS_BUF);
    if (n < 0) {
        free(body);
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s did not fit its buffer", METRICS_PATH);
    }
    return http_reply(conn, MHD_HTTP_OK, METRICS_CTYPE, body, (size_t)n, MHD_RESPMEM_MUST_FREE);
}
