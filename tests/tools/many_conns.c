/* many_conns.c - opens N connections to 127.0.0.1:PORT at once, then sends a request on each and counts how each one ends (bounded by a timeout). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Usage: many_conns PORT N TIMEOUT_S [HOLD_MS]
 * 1. opens N non-blocking TCP connections to 127.0.0.1:PORT;
 * 2. waits HOLD_MS (default 1000) so the server accepts (or refuses) them all
 *    while they are open at the same time;
 * 3. sends "GET /stats HTTP/1.0" on each and reads until the server closes.
 * Prints one line:
 *   conns=N answered=A refused=R reset=X closed_silent=C timeout=T other=O
 *   answered:      a response starting "HTTP/1." was read
 *   refused:       connect() failed (ECONNREFUSED)
 *   reset:         ECONNRESET/EPIPE before any response byte
 *   closed_silent: EOF before any response byte (the server closed it)
 *   timeout:       no end within TIMEOUT_S in all
 * Exit status: 0 when every connection ended one way or another within
 * TIMEOUT_S (timeout=0), 1 otherwise, 2 on bad usage.
 */

#define MAX_CONNS 4096

enum state { ST_CONNECTING, ST_SENDING, ST_READING, ST_ANSWERED, ST_REFUSED, ST_RESET,
             ST_SILENT, ST_OTHER };

/* One client connection. */
typedef struct conn {
    int fd;          /* -1 once finished */
    enum state st;   /* where it is */
    size_t sent;     /* request bytes written */
    char head[16];   /* first bytes of the response */
    size_t got;      /* bytes read into head (more are read and dropped) */
} conn;

static const char request[] = "GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish(conn *c, enum state st)
{
    c->st = st;
    close(c->fd);
    c->fd = -1;
}

/* Classify an errno seen on a connection that got no answer yet. */
static void finish_errno(conn *c, int err)
{
    if (err == ECONNREFUSED)
        finish(c, ST_REFUSED);
    else if (err == ECONNRESET || err == EPIPE)
        finish(c, ST_RESET);
    else
        finish(c, ST_OTHER);
}

/* Read what is there; finish on EOF or error. */
static void do_read(conn *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            size_t take = (size_t)n;
            if (take > sizeof c->head - 1 - c->got)
                take = sizeof c->head - 1 - c->got;
            memcpy(c->head + c->got, buf, take);
            c->got += take;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (c->got > 0) /* some answer came, then EOF or error */
            finish(c, strncmp(c->head, "HTTP/1.", 7) == 0 ? ST_ANSWERED : ST_OTHER);
        else if (n == 0)
            finish(c, ST_SILENT);
        else
            finish_errno(c, errno);
        return;
    }
}

static void do_send(conn *c)
{
    while (c->sent < sizeof request - 1) {
        ssize_t n = send(c->fd, request + c->sent, sizeof request - 1 - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            finish_errno(c, errno);
            return;
        }
        c->sent += (size_t)n;
    }
    c->st = ST_READING;
}

static int parse_pos(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long port, n, timeout_s, hold_ms = 1000;
    static conn c[MAX_CONNS];
    static struct pollfd pfd[MAX_CONNS];
    static int idx[MAX_CONNS];
    struct sockaddr_in sa;
    struct rlimit rl;
    int counts[ST_OTHER + 1] = { 0 };
    int timeouts = 0;
    double deadline;

    if (argc < 4 || argc > 5 || parse_pos(argv[1], 1, 65535, &port) != 0 ||
        parse_pos(argv[2], 1, MAX_CONNS, &n) != 0 || parse_pos(argv[3], 1, 600, &timeout_s) != 0 ||
        (argc == 5 && parse_pos(argv[4], 0, 60000, &hold_ms) != 0)) {
        fprintf(stderr, "usage: many_conns PORT N(1..%d) TIMEOUT_S(1..600) [HOLD_MS]\n", MAX_CONNS);
        return 2;
    }
    /* Room for N sockets: raise the soft limit up to the hard one. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 16 ? rl.rlim_max : (rlim_t)n + 16;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    deadline = now_s() + (double)timeout_s;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* ---- 1. open them all */
    for (long i = 0; i < n; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c[i].fd < 0) {
            fprintf(stderr, "many_conns: socket #%ld: %s\n", i, strerror(errno));
            c[i].st = ST_OTHER;
            continue;
        }
        c[i].st = ST_CONNECTING;
        if (connect(c[i].fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            c[i].st = ST_SENDING;
        else if (errno != EINPROGRESS)
            finish_errno(&c[i], errno);
    }

    /* ---- 2. hold them open together, finishing connects */
    {
        struct timespec ts = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }

    /* ---- 3. send and read, all bounded by the deadline */
    for (;;) {
        int np = 0, left;
        double now = now_s();
        if (now >= deadline)
            break;
        for (long i = 0; i < n; i++) {
            if (c[i].fd < 0)
                continue;
            pfd[np].fd = c[i].fd;
            pfd[np].events = c[i].st == ST_READING ? POLLIN : POLLOUT;
            pfd[np].revents = 0;
            idx[np++] = (int)i;
        }
        if (np == 0)
            break;
        left = (int)((deadline - now) * 1000) + 1;
        if (poll(pfd, (nfds_t)np, left > 200 ? 200 : left) < 0 && errno != EINTR)
            break;
        for (int k = 0; k < np; k++) {
            conn *cc = &c[idx[k]];
            if (pfd[k].revents == 0)
                continue;
            if (cc->st == ST_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(cc->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err != 0) {
                    finish_errno(cc, err);
                    continue;
                }
                cc->st = ST_SENDING;
            }
            if (cc->st == ST_SENDING)
                do_send(cc);
            else if (cc->st == ST_READING)
                do_read(cc);
        }
    }

    for (long i = 0; i < n; i++) {
        if (c[i].fd >= 0) {
            timeouts++;
            close(c[i].fd);
        } else {
            counts[c[i].st]++;
        }
    }
    printf("conns=%ld answered=%d refused=%d reset=%d closed_silent=%d timeout=%d other=%d\n", n,
           counts[ST_ANSWERED], counts[ST_REFUSED], counts[ST_RESET], counts[ST_SILENT], timeouts,
           counts[ST_OTHER]);
    return timeouts == 0 ? 0 : 1;
}
