/* main.c - bin/server: parses options, loads the user directory, runs the libmicrohttpd daemon until SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http/capture.h"
#include "decimal.h"
#include "analysis/history.h"
#include "exercises/exercise.h"
#include "routes.h"
#include "http/stats.h"
#include "tracker.h"
#include "user_directory.h"

#define DEFAULT_PORT 5000
#define DEFAULT_BIND "127.0.0.1"
#define DEFAULT_LEAK_CAP_MB 1024u
#define DEFAULT_THREADS 8u
#define MAX_THREADS 64u
#define MAX_LEAK_CAP_MB (1u << 20)  /* 1 TiB: more than any machine here */
#define CONNECTION_TIMEOUT_S 10u    /* an idle client cannot hold a thread longer */
#define CONNECTION_LIMIT 256u       /* concurrent connections accepted */
#define BYTES_PER_MB (1024u * 1024u) /* --leak-cap-mb counts MiB */

/* ------------------------------------------------------------ options */

/* Everything the command line sets. */
typedef struct server_options {
    unsigned int port;        /* 1..65535 */
    const char *bind;         /* numeric IPv4 or IPv6 address, brackets allowed for IPv6 */
    int fixed;                /* --fixed was given (while parsing; then leak is ROUTES_LEAK_NONE) */
    routes_leak_kind leak;    /* --leak=drop|cache|response|none (default drop; --fixed = none) */
    unsigned int leak_cap_mb; /* 1..MAX_LEAK_CAP_MB, MiB */
    unsigned int threads;     /* MHD thread pool size, 1..MAX_THREADS */
    int no_tracker;           /* 1: tracker_set_enabled(0) at start */
    unsigned int ballast;     /* live 32-byte blocks held from start (benchmarks), 0..MAX_BALLAST */
    unsigned int sample_ms;   /* --sample-ms: the history's sampling period (history.h bounds) */
    unsigned int exercise;    /* --exercise N|random: 1..EXERCISE_COUNT, 0 = the lab's own GET / */
} server_options;

#define MAX_BALLAST 10000000u

/* --leak values, indexed by routes_leak_kind. */
static const char *const leak_kind_names[] = {
    [ROUTES_LEAK_DROP] = "drop", [ROUTES_LEAK_CACHE] = "cache", [ROUTES_LEAK_NONE] = "none",
    [ROUTES_LEAK_RESPONSE] = "response",
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: server [--port P] [--bind ADDR] [--leak drop|cache|response|none] [--fixed]\n"
            "              [--leak-cap-mb N] [--threads N] [--no-tracker] [--exercise N|random]\n"
            "              [--help]\n"
            "\n"
            "The leak lab's web server. GET / answers \"hello user<ID>\" and, unless\n"
            "--fixed, leaks the user's 40200-byte profile record on every request.\n"
            "How it leaks is the --leak kind: drop (the pointer is dropped, never freed:\n"
            "exit-time checkers report it) or cache (kept in a cache that never evicts:\n"
            "still reachable, exit-time checkers stay quiet, RSS grows the same) or\n"
            "response (the record is freed, but each reply's libmicrohttpd response is\n"
            "never destroyed: ~250 bytes a request, allocated inside the library).\n"
            "GET /stats shows counters and RSS; GET /capture shows where live memory\n"
            "was allocated (?top=N&key=lineno|traceback|filename&frames=N&format=text|json\n"
            "&baseline=NAME); GET /leaks ranks the sites as leak suspects from their history\n"
            "(?format=text|json&top=N&window=SECONDS&points=N).\n"
            "\n"
            "  --port P          TCP port, 1..65535 (default %d)\n"
            "  --bind ADDR       numeric IPv4 or IPv6 address to listen on (default %s)\n"
            "  --leak KIND       drop (default), cache, response, or none (the fixed server)\n"
            "  --fixed           same as --leak=none: free each record after use\n"
            "  --leak-cap-mb N   stop leaking (answer 503) after N MiB, 1..%u (default %u)\n"
            "  --threads N       worker threads, 1..%u (default %u)\n"
            "  --no-tracker      do not record allocations (/capture answers 503)\n"
            "  --exercise N      a workshop exercise (docs/exercises/N.md), 1..%u, or\n"
            "                    random: one of 1..5, not told which; GET / is the\n"
            "                    exercise's, the rest of the server is the same\n"
            "  --ballast-blocks N  hold N small live blocks from start, 0..%u (benchmarks:\n"
            "                    /capture cost against the number of live blocks)\n"
            "  --sample-ms N     sample the per-site history every N ms, %u..%u (default %u;\n"
            "                    0: no history, /leaks answers 503)\n"
            "  --help            show this help and exit\n"
            "\n"
            "Prints \"ready: http://ADDR:P/ pid=N mode=leaky|fixed|exercise tracker=on|off\"\n"
            "when serving (with \" leak=cache\" or \" leak=response\" added for those kinds);\n"
            "stops cleanly on SIGINT or SIGTERM. Exit status: 0 stopped by a signal,\n"
            "1 could not start (e.g. port in use), 2 bad command line.\n",
            DEFAULT_PORT, DEFAULT_BIND, MAX_LEAK_CAP_MB, DEFAULT_LEAK_CAP_MB, MAX_THREADS,
            DEFAULT_THREADS, (unsigned)EXERCISE_COUNT, MAX_BALLAST, HISTORY_PERIOD_MS_MIN,
            HISTORY_PERIOD_MS_MAX, HISTORY_PERIOD_MS_DEFAULT);
}

/* Report a bad command line on one line and exit 2. */
static void bad_usage(const char *what)
{
    fprintf(stderr, "server: %s (see server --help)\n", what);
    exit(2);
}

/* Parse s as a decimal number in lo..hi (digits only), or exit 2 naming opt. */
static unsigned int parse_number(const char *opt, const char *s, unsigned int lo, unsigned int hi)
{
    unsigned long v;
    char msg[160];

    if (decimal_parse(s, hi, &v) != 0 || v < lo || v > hi) {
        snprintf(msg, sizeof msg, "%s: '%.40s' is not a number from %u to %u", opt, s, lo, hi);
        bad_usage(msg);
    }
    return (unsigned int)v;
}

static void parse_options(int argc, char **argv, server_options *o)
{
    static const struct option longopts[] = {
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "fixed", no_argument, NULL, 'f' },
        { "leak", required_argument, NULL, 'L' },
        { "leak-cap-mb", required_argument, NULL, 'c' },
        { "threads", required_argument, NULL, 't' },
        { "no-tracker", no_argument, NULL, 'n' },
        { "ballast-blocks", required_argument, NULL, 'B' },
        { "sample-ms", required_argument, NULL, 'S' },
        { "exercise", required_argument, NULL, 'E' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char msg[160];
    int c, leak_given = 0;
    size_t k;

    o->port = DEFAULT_PORT;
    o->bind = DEFAULT_BIND;
    o->fixed = 0;
    o->leak = ROUTES_LEAK_DROP;
    o->leak_cap_mb = DEFAULT_LEAK_CAP_MB;
    o->threads = DEFAULT_THREADS;
    o->no_tracker = 0;
    o->ballast = 0;
    o->sample_ms = HISTORY_PERIOD_MS_DEFAULT;
    o->exercise = 0;

    opterr = 0; /* our own one-line messages, not getopt's */
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->port = parse_number("--port", optarg, 1, 65535);
            break;
        case 'b':
            o->bind = optarg;
            break;
        case 'f':
            o->fixed = 1;
            break;
        case 'L':
            for (k = 0; k < sizeof leak_kind_names / sizeof *leak_kind_names; k++)
                if (strcmp(optarg, leak_kind_names[k]) == 0)
                    break;
            if (k == sizeof leak_kind_names / sizeof *leak_kind_names) {
                snprintf(msg, sizeof msg, "--leak: '%.40s' is not drop, cache, response or none", optarg);
                bad_usage(msg);
            }
            o->leak = (routes_leak_kind)k;
            leak_given = 1;
            break;
        case 'c':
            o->leak_cap_mb = parse_number("--leak-cap-mb", optarg, 1, MAX_LEAK_CAP_MB);
            break;
        case 't':
            o->threads = parse_number("--threads", optarg, 1, MAX_THREADS);
            break;
        case 'n':
            o->no_tracker = 1;
            break;
        case 'B':
            o->ballast = parse_number("--ballast-blocks", optarg, 0, MAX_BALLAST);
            break;
        case 'S':
            o->sample_ms = parse_number("--sample-ms", optarg, 0, HISTORY_PERIOD_MS_MAX);
            if (o->sample_ms != 0 && o->sample_ms < HISTORY_PERIOD_MS_MIN) {
                snprintf(msg, sizeof msg, "--sample-ms: %u is below %u (0 turns the history off)",
                         o->sample_ms, HISTORY_PERIOD_MS_MIN);
                bad_usage(msg);
            }
            break;
        case 'E':
            o->exercise = exercise_pick(optarg);
            if (o->exercise == 0) {
                snprintf(msg, sizeof msg, "--exercise: '%.40s' is not a number from 1 to %u, or random",
                         optarg, (unsigned)EXERCISE_COUNT);
                bad_usage(msg);
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            snprintf(msg, sizeof msg, "option %.40s needs a value", argv[optind - 1]);
            bad_usage(msg);
            break;
        default:
            snprintf(msg, sizeof msg, "unknown option '%.40s'", argv[optind - 1]);
            bad_usage(msg);
        }
    }
    if (optind < argc) {
        snprintf(msg, sizeof msg, "unexpected argument '%.40s'", argv[optind]);
        bad_usage(msg);
    }
    if (o->fixed && leak_given && o->leak != ROUTES_LEAK_NONE)
        bad_usage("--fixed and --leak=drop|cache contradict each other; give one of them");
    if (o->fixed)
        o->leak = ROUTES_LEAK_NONE; /* --fixed is an alias of --leak=none */
    if (o->exercise && (o->fixed || leak_given))
        bad_usage("--exercise has its own GET /; it takes no --leak or --fixed");
}

/* ------------------------------------------------------------ listening socket */

/* A parsed --bind address with the port, and how to print it in URLs. */
typedef struct listen_addr {
    struct sockaddr_storage ss; /* AF_INET or AF_INET6, port set */
    socklen_t len;              /* sizeof the sockaddr_in/_in6 in ss */
    char text[INET6_ADDRSTRLEN + 8]; /* "127.0.0.1:5000" or "[::1]:5000" */
    char url_host[INET6_ADDRSTRLEN + 2]; /* "127.0.0.1" or "[::1]" */
} listen_addr;

/* Fill *a from the numeric address s and port. Returns 0, or -1 when s is
 * not a numeric IPv4 or IPv6 address. */
static int parse_bind(const char *s, unsigned int port, listen_addr *a)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
    char host[INET6_ADDRSTRLEN];
    size_t n = strlen(s);

    memset(a, 0, sizeof *a);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') { /* accept "[::1]" as written in URLs */
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof host)
        return -1;
    memcpy(host, s, n);
    host[n] = '\0';

    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        a->len = sizeof *in4;
        snprintf(a->url_host, sizeof a->url_host, "%s", host);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        a->len = sizeof *in6;
        snprintf(a->url_host, sizeof a->url_host, "[%s]", host);
    } else {
        return -1;
    }
    snprintf(a->text, sizeof a->text, "%s:%u", a->url_host, port);
    return 0;
}

/* Open, bind and listen on a, so a failure can be told exactly (MHD_start_daemon
 * only says NULL). Returns the socket, or -1 with errno set and nothing open. */
static int open_listener(const listen_addr *a)
{
    int fd, one = 1, saved;

    fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Like MHD's own socket: restart right after a stop (TIME_WAIT), but
     * never share a port another process is listening on. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        goto fail;
    if (a->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0)
        goto fail;
    if (listen(fd, SOMAXCONN) != 0)
        goto fail;
    return fd;

fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* ------------------------------------------------------------ ballast */

/* --ballast-blocks N: N live 32-byte blocks, kept until exit, so that
 * `make bench` can show /capture's cost follows call sites, not blocks.
 * Returns the array (freed at exit), or NULL when n is 0 or memory ran out. */
static void **ballast_alloc(unsigned int n)
{
    void **blocks = n ? calloc(n, sizeof *blocks) : NULL;
    for (unsigned int i = 0; blocks && i < n; i++) {
        blocks[i] = malloc(32);
        if (blocks[i]) memset(blocks[i], (int)(i & 0xff), 32);
    }
    return blocks;
}

static void ballast_free(void **blocks, unsigned int n)
{
    for (unsigned int i = 0; blocks && i < n; i++) free(blocks[i]);
    free(blocks);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    server_options opt;
    listen_addr addr;
    routes_config cfg;
    struct MHD_Daemon *daemon;
    sigset_t stop_signals;
    int fd, sig = 0;
    char msg[160];

    parse_options(argc, argv, &opt);
    if (opt.no_tracker)
        tracker_set_enabled(0); /* before anything else allocates */
    if (parse_bind(opt.bind, opt.port, &addr) != 0) {
        snprintf(msg, sizeof msg, "--bind: '%.60s' is not a numeric IPv4 or IPv6 address",
                 opt.bind);
        bad_usage(msg);
    }

    /* Stop signals are taken by sigwait below: block them before any thread
     * exists so MHD's threads inherit the mask. Broken clients give EPIPE. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    void **ballast = ballast_alloc(opt.ballast);
    if (opt.ballast && !ballast) {
        fprintf(stderr, "server: out of memory allocating %u ballast blocks\n", opt.ballast);
        return 1;
    }
    if (user_directory_load() != 0) {
        fprintf(stderr, "server: out of memory loading the user directory\n");
        return 1;
    }
    /* An exercise's server says only "exercise": which one is for the tools to find. */
    stats_init(opt.exercise ? "exercise" : leak_kind_names[opt.leak],
               (uint64_t)opt.leak_cap_mb * BYTES_PER_MB);
    cfg.leak = opt.leak;
    cfg.leak_cap_mb = opt.leak_cap_mb;
    /* The per-site history behind /leaks; without it the server still serves (/leaks: 503). */
    if (opt.sample_ms && tracker_is_active() && history_start(opt.sample_ms, stats_requests) != 0)
        fprintf(stderr, "server: no per-site history (%s); /leaks will answer 503\n", strerror(errno));
    cfg.exercise = opt.exercise;

    fd = open_listener(&addr);
    if (fd < 0) {
        fprintf(stderr, "server: cannot listen on %s: %s\n", addr.text, strerror(errno));
        goto fail_directory;
    }

    /* The daemon as libmicrohttpd's examples start it, with a thread pool so
     * concurrent clients (ab -c 8) are served in parallel. The socket is
     * ours (MHD_OPTION_LISTEN_SOCKET instead of MHD_OPTION_SOCK_ADDR), so
     * the error above can name the address and the reason. */
    daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                              (uint16_t)opt.port, NULL, NULL, routes_handle, &cfg,
                              MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)opt.threads,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
                              MHD_OPTION_UNESCAPE_CALLBACK, routes_unescape, (void *)NULL,
                              MHD_OPTION_END);
    if (daemon == NULL) {
        fprintf(stderr, "server: cannot start the HTTP daemon on %s (libmicrohttpd refused "
                        "the settings)\n", addr.text);
        close(fd);
        goto fail_directory;
    }

    printf("ready: http://%s:%u/ pid=%ld mode=%s tracker=%s%s\n", addr.url_host, opt.port,
           (long)getpid(), opt.exercise ? "exercise" : opt.leak == ROUTES_LEAK_NONE ? "fixed" : "leaky",
           tracker_is_active() ? "on" : "off",
           /* only the new kind is named, so the seed's ready line is unchanged */
           opt.leak == ROUTES_LEAK_CACHE ? " leak=cache" : opt.leak == ROUTES_LEAK_RESPONSE ? " leak=response" : "");
    fflush(stdout);

    while (sigwait(&stop_signals, &sig) != 0)
        ; /* sigwait only fails with EINVAL, which the set above rules out */
    fprintf(stderr, "server: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");

    MHD_stop_daemon(daemon); /* waits for the handlers, closes the socket */
    history_stop();
    capture_shutdown();
    user_directory_free();
    ballast_free(ballast, opt.ballast);
    return 0;

fail_directory:
    history_stop();
    user_directory_free();
    ballast_free(ballast, opt.ballast);
    return 1;
}
