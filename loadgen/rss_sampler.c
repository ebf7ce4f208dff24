/* rss_sampler.c - samples a server's VmRSS and its request counter (GET /stats) into a CSV while a load runs. */

/*
 * Every --interval-ms it reads VmRSS from /proc/PID/status and "requests":N
 * from the server's own GET /stats (a tiny hand-written HTTP/1.0 client with
 * a timeout), and appends the row  run,elapsed_s,requests,rss_kb  to the CSV,
 * flushed at once so the file keeps every sample whatever happens next.
 *
 * It stops:
 *   - when --until-pid has exited (one last sample is taken after that): 0
 *   - after --max-seconds (always bounded): 0 without --until-pid, else 4
 *   - when the server PID disappears: one line on stderr, status 3
 *   - on SIGTERM/SIGINT: one line on stderr, status 128+signal
 * Bad arguments: usage on stderr, status 2. Other runtime errors: status 1.
 *
 * The processes it watches are not its children, so it cannot waitpid() them:
 * a process is alive while /proc/PID/stat exists and its state is not Z
 * (zombie, waiting for its parent to reap it) or X (dead).
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

#define STATS_TIMEOUT_MS 1000  /* whole GET /stats exchange, connect to EOF */
#define STATS_BUF_SIZE   4096  /* /stats answers one short JSON line */

#define EXIT_USAGE       2
#define EXIT_SERVER_GONE 3
#define EXIT_TOO_LONG    4

static struct sampler_state {
    pid_t server_pid;            /* process whose VmRSS we read (required) */
    pid_t until_pid;             /* stop after this one exits; 0 = none */
    const char *host;            /* where /stats is asked; default 127.0.0.1 */
    const char *port;            /* TCP port of the server, as given (1..65535) */
    const char *out_path;        /* CSV file */
    const char *run;             /* label in the run column (no comma, quote, newline) */
    long interval_ms;            /* between samples, 10..60000; default 100 */
    long max_seconds;            /* hard bound on the run, 1..86400; default 600 */
    int append;                  /* 1 = append; header only if the file is new or empty */
    uint64_t expect;             /* requests expected, for the progress line; 0 = unknown */

    struct sockaddr_storage addr; /* resolved once at start */
    socklen_t addrlen;            /* bytes used in addr */
    FILE *out;                    /* the open CSV */
    double start;                 /* CLOCK_MONOTONIC seconds at start */
    uint64_t samples;             /* rows written */
    uint64_t stats_failures;      /* GET /stats that failed (row skipped) */
    uint64_t last_requests;       /* requests in the last row */
    uint64_t base_requests;       /* requests in the first row: progress counts from it */
    long last_rss_kb;             /* rss_kb in the last row */
    int tty;                      /* stderr is a terminal: progress rewritten with \r */
    double last_progress;         /* when the last non-tty progress line was printed, s */
    int progress_open;            /* a \r progress line is on screen, needs a newline */
    int progress_stale;           /* the last row has not been shown on a progress line */
} S;

static volatile sig_atomic_t stop_signal; /* set by the handler: SIGINT or SIGTERM */

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ends an open \r progress line, so the next message starts on its own line. */
static void progress_break(void)
{
    if (S.progress_open) {
        fputc('\n', stderr);
        S.progress_open = 0;
    }
}

/* One-line message on stderr, prefixed with the program name. */
static void msg(const char *fmt, ...)
{
    va_list ap;
    progress_break();
    fputs("rss_sampler: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(void)
{
    fputs("usage: rss_sampler --pid PID --port P [--host 127.0.0.1] --out FILE.csv --run LABEL\n"
          "                   [--interval-ms 100] [--until-pid PID] [--max-seconds 600]\n"
          "                   [--append] [--expect N]\n"
          "Samples the server's VmRSS (/proc/PID/status) and its request counter (GET /stats)\n"
          "into FILE.csv as rows run,elapsed_s,requests,rss_kb until --until-pid exits.\n"
          "Exit: 0 done, 1 error, 2 bad usage, 3 server exited, 4 --max-seconds reached\n"
          "while --until-pid was still running.\n",
          stderr);
    exit(EXIT_USAGE);
}

/* Parses a decimal integer in [min, max] into *out. Returns 0, or -1 if it is not one. */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;
    if (s == NULL || *s == '\0' || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses a numeric option or prints what was wrong and the usage (exit 2). */
static long arg_long(const char *name, const char *s, long min, long max)
{
    long v;
    if (parse_long(s, min, max, &v) != 0) {
        fprintf(stderr, "rss_sampler: %s must be an integer in %ld..%ld, got '%s'\n", name, min, max, s);
        usage();
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* /proc readers                                                       */
/* ------------------------------------------------------------------ */

/* 1 if pid exists and is neither a zombie nor dead, else 0. */
static int pid_alive(pid_t pid)
{
    char path[64], buf[512], *rp;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may hold spaces and ')', so take the last ')'. */
    rp = strrchr(buf, ')');
    if (rp == NULL || rp[1] != ' ')
        return 0;
    return rp[2] != 'Z' && rp[2] != 'X';
}

/* VmRSS of pid in kB. Returns -1 if the process is gone (a zombie has no VmRSS). */
static long read_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* ------------------------------------------------------------------ */
/* GET /stats: a minimal HTTP/1.0 client with a deadline               */
/* ------------------------------------------------------------------ */

/* Resolves S.host:S.port once into S.addr. Returns 0, or -1 with a message. */
static int resolve_server(void)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(S.host, S.port, &hints, &res);
    if (rc != 0 || res == NULL) {
        msg("cannot resolve host '%s': %s", S.host, rc != 0 ? gai_strerror(rc) : "no address");
        return -1;
    }
    memcpy(&S.addr, res->ai_addr, res->ai_addrlen);
    S.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Milliseconds left before deadline (CLOCK_MONOTONIC seconds), at least 0. */
static int ms_left(double deadline)
{
    double left = (deadline - now_s()) * 1000.0;
    return left > 0 ? (int)left + 1 : 0;
}

/* Waits until fd is ready for events or the deadline passes. Returns 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, double deadline)
{
    struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
    int rc, left;
    for (;;) {
        left = ms_left(deadline);
        if (left == 0)
            return 0;
        rc = poll(&p, 1, left);
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR || stop_signal)
            return -1;
    }
}

/* 1 if buf[0..got) holds the headers and a body as long as their Content-Length says. */
static int body_complete(const char *buf, size_t got)
{
    const char *end, *p;
    size_t head_len;
    unsigned long long clen;

    end = memmem(buf, got, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    head_len = (size_t)(end - buf) + 4;
    for (p = buf; p != NULL && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
        if (*p == '\n')
            p++;
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            clen = strtoull(p + 15, NULL, 10);
            return got >= head_len && got - head_len >= clen;
        }
    }
    return 0;
}

/*
 * Asks the server for GET /stats and parses "requests":N into *requests.
 * Returns 0 on success; on failure -1 and a short reason in *why (a static
 * string). Leaves no socket open either way.
 */
static int fetch_requests(uint64_t *requests, const char **why)
{
    char req[256], buf[STATS_BUF_SIZE];
    double deadline = now_s() + STATS_TIMEOUT_MS / 1000.0;
    size_t got = 0;
    int fd, len, err = 0, rc = -1;
    socklen_t errlen = sizeof err;
    char *body, *p, *end;
    unsigned long long v;

    *why = "cannot create socket";
    fd = socket(S.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;

    *why = "connection refused or failed";
    if (connect(fd, (struct sockaddr *)&S.addr, S.addrlen) != 0) {
        if (errno != EINPROGRESS)
            goto fail;
        *why = "timed out connecting";
        if (wait_fd(fd, POLLOUT, deadline) != 1)
            goto fail;
        *why = "connection refused or failed";
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0)
            goto fail;
    }

    len = snprintf(req, sizeof req, "GET /stats HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n",
                   S.host, S.port);
    *why = "request too long";
    if (len < 0 || (size_t)len >= sizeof req)
        goto fail;
    *why = "cannot send the request";
    /* The request is far smaller than any socket buffer: one send suffices. */
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len)
        goto fail;

    /* HTTP/1.0: the server closes the connection after the body. Stop
     * earlier when Content-Length says the body is complete, in case a
     * server keeps the connection open anyway. */
    for (;;) {
        ssize_t n;
        if (body_complete(buf, got))
            break;
        *why = "timed out reading the answer";
        if (wait_fd(fd, POLLIN, deadline) != 1)
            goto fail;
        n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            *why = "connection reset while reading";
            goto fail;
        }
        got += (size_t)n;
        buf[got] = '\0'; /* body_complete() reads it as a string */
        if (got == sizeof buf - 1)
            break; /* more than /stats ever sends: parse what we have */
    }
    buf[got] = '\0';

    *why = "answer is not HTTP 200";
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0)
        goto fail;
    *why = "answer has no body";
    body = strstr(buf, "\r\n\r\n");
    if (body == NULL)
        goto fail;
    *why = "no \"requests\":N in the answer";
    p = strstr(body, "\"requests\":");
    if (p == NULL)
        goto fail;
    p += strlen("\"requests\":");
    while (*p == ' ')
        p++;
    if (!isdigit((unsigned char)*p))
        goto fail;
    errno = 0;
    v = strtoull(p, &end, 10);
    if (errno != 0)
        goto fail;
    *requests = (uint64_t)v;
    rc = 0;
fail:
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Output: CSV rows and the progress line                              */
/* ------------------------------------------------------------------ */

/* Opens the CSV (truncates, or appends with --append) and writes the header
 * when the file starts empty. Returns 0, or -1 with a message. */
static int open_csv(void)
{
    struct stat st;
    int new_file = !S.append || stat(S.out_path, &st) != 0 || st.st_size == 0;

    S.out = fopen(S.out_path, S.append ? "ae" : "we");
    if (S.out == NULL) {
        msg("cannot open %s: %s", S.out_path, strerror(errno));
        return -1;
    }
    if (new_file && (fputs("run,elapsed_s,requests,rss_kb\n", S.out) == EOF || fflush(S.out) != 0)) {
        msg("cannot write %s: %s", S.out_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Prints the progress line (requests counted from the first sample): rewritten in
 * place on a tty, once a second otherwise. */
static void progress(double elapsed, int force)
{
    char line[160];
    int n;

    if (!S.tty && !force && elapsed - S.last_progress < 1.0) {
        S.progress_stale = 1;
        return;
    }
    S.last_progress = elapsed;
    S.progress_stale = 0;
    n = snprintf(line, sizeof line, "[%s] %.1f s  requests %" PRIu64, S.run, elapsed,
                 S.last_requests - S.base_requests);
    if (S.expect > 0 && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "/%" PRIu64, S.expect);
    if (n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, "  RSS %.1f MB", (double)S.last_rss_kb / 1000.0);
    if (S.tty) {
        /* \033[K clears what a longer previous line left on the right. */
        fprintf(stderr, "\r%s\033[K", line);
        S.progress_open = 1;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

/*
 * Takes one sample and writes its row. Returns 0 (row written or /stats
 * skipped this time), EXIT_SERVER_GONE if the server has disappeared, or 1
 * if the CSV cannot be written.
 */
static int take_sample(void)
{
    uint64_t requests = 0;
    const char *why = NULL;
    long rss;
    double elapsed;

    rss = read_rss_kb(S.server_pid);
    if (rss < 0 || !pid_alive(S.server_pid))
        return EXIT_SERVER_GONE;
    if (fetch_requests(&requests, &why) != 0) {
        if (!pid_alive(S.server_pid))
            return EXIT_SERVER_GONE;
        if (stop_signal)
            return 0; /* the signal cut the exchange short: not a failure */
        /* A row with a stale counter would bend the curve: skip it, say so once. */
        if (S.stats_failures++ == 0)
            msg("GET /stats on %s:%s failed: %s (row skipped; will retry)", S.host, S.port, why);
        return 0;
    }
    elapsed = now_s() - S.start;
    if (fprintf(S.out, "%s,%.3f,%" PRIu64 ",%ld\n", S.run, elapsed, requests, rss) < 0 || fflush(S.out) != 0) {
        msg("cannot write %s: %s", S.out_path, strerror(errno));
        return 1;
    }
    if (S.samples++ == 0)
        S.base_requests = requests;
    S.last_requests = requests;
    S.last_rss_kb = rss;
    progress(elapsed, 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Arguments, signals, main loop                                       */
/* ------------------------------------------------------------------ */

static void parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        { "pid", required_argument, NULL, 'p' },
        { "port", required_argument, NULL, 'P' },
        { "host", required_argument, NULL, 'H' },
        { "out", required_argument, NULL, 'o' },
        { "run", required_argument, NULL, 'r' },
        { "interval-ms", required_argument, NULL, 'i' },
        { "until-pid", required_argument, NULL, 'u' },
        { "max-seconds", required_argument, NULL, 'm' },
        { "append", no_argument, NULL, 'a' },
        { "expect", required_argument, NULL, 'e' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    S.host = "127.0.0.1";
    S.interval_ms = 100;
    S.max_seconds = 600;
    opterr = 0; /* we print our own one-line reason */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': S.server_pid = (pid_t)arg_long("--pid", optarg, 1, 4194304); break;
        case 'P': arg_long("--port", optarg, 1, 65535); S.port = optarg; break;
        case 'H': S.host = optarg; break;
        case 'o': S.out_path = optarg; break;
        case 'r': S.run = optarg; break;
        case 'i': S.interval_ms = arg_long("--interval-ms", optarg, 10, 60000); break;
        case 'u': S.until_pid = (pid_t)arg_long("--until-pid", optarg, 1, 4194304); break;
        case 'm': S.max_seconds = arg_long("--max-seconds", optarg, 1, 86400); break;
        case 'a': S.append = 1; break;
        case 'e': S.expect = (uint64_t)arg_long("--expect", optarg, 0, 1000000000L); break;
        case 'h': usage(); break;
        default:
            fprintf(stderr, "rss_sampler: bad option '%s' (unknown, or missing its value)\n",
                    argv[optind - 1]);
            usage();
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rss_sampler: unexpected argument '%s'\n", argv[optind]);
        usage();
    }
    if (S.server_pid == 0 || S.port == NULL || S.out_path == NULL || S.run == NULL) {
        fputs("rss_sampler: --pid, --port, --out and --run are required\n", stderr);
        usage();
    }
    if (*S.run == '\0' || strpbrk(S.run, ",\"\r\n") != NULL) {
        fprintf(stderr, "rss_sampler: --run label must be non-empty, without comma, quote or newline\n");
        usage();
    }
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* Catches sig to stop cleanly, unless it was ignored when we started (a
 * background job of a script ignores SIGINT: Ctrl-C is for the script). */
static void catch_signal(int sig)
{
    struct sigaction sa, old;
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL); /* no SA_RESTART: the sleep returns at once */
}

/* Sleeps until absolute CLOCK_MONOTONIC time t (s), or until a signal stops us. */
static void sleep_until(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    while (!stop_signal && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int main(int argc, char **argv)
{
    double next, interval;
    int rc = 0, rc_sample, until_done;

    parse_args(argc, argv);
    S.tty = isatty(STDERR_FILENO);
    catch_signal(SIGINT);
    catch_signal(SIGTERM);

    if (!pid_alive(S.server_pid)) {
        msg("server pid %d is not running", (int)S.server_pid);
        return EXIT_SERVER_GONE;
    }
    if (resolve_server() != 0 || open_csv() != 0)
        return 1;

    S.start = now_s();
    interval = (double)S.interval_ms / 1000.0;
    next = S.start;
    for (;;) {
        /* Look at the load first, so the sample taken after it ended is the last one. */
        until_done = S.until_pid != 0 && !pid_alive(S.until_pid);
        rc_sample = take_sample();
        if (rc_sample == EXIT_SERVER_GONE) {
            msg("server pid %d exited; kept %" PRIu64 " samples", (int)S.server_pid, S.samples);
            rc = EXIT_SERVER_GONE;
            break;
        }
        if (rc_sample != 0) {
            rc = 1;
            break;
        }
        if (stop_signal) {
            msg("stopped by signal %d; kept %" PRIu64 " samples", (int)stop_signal, S.samples);
            rc = 128 + (int)stop_signal;
            break;
        }
        if (until_done)
            break;
        if (now_s() - S.start >= (double)S.max_seconds) {
            if (S.until_pid != 0) {
                msg("pid %d still running after --max-seconds %ld; stopping (kept %" PRIu64 " samples)",
                    (int)S.until_pid, S.max_seconds, S.samples);
                rc = EXIT_TOO_LONG;
            }
            break;
        }
        next += interval;
        if (next < now_s())
            next = now_s(); /* a slow /stats: do not try to catch up in a burst */
        sleep_until(next);
    }

    if (rc == 0 && S.progress_stale)
        progress(now_s() - S.start, 1);
    progress_break();
    if (rc == 0 && S.samples == 0) {
        msg("no sample kept: GET /stats on %s:%s never answered", S.host, S.port);
        rc = 1;
    } else if (rc == 0 && S.stats_failures > 0) {
        msg("%" PRIu64 " of the GET /stats queries failed; their rows were skipped", S.stats_failures);
    }
    if (fclose(S.out) != 0 && rc == 0) {
        msg("cannot write %s: %s", S.out_path, strerror(errno));
        rc = 1;
    }
    return rc;
}
