/* fuzz_http.c - libFuzzer target: raw request bytes through libmicrohttpd into the server's dispatcher (server/routes.c), in process. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "../../server/routes.h"
#include "../../server/http/stats.h"
#include "../../server/user_directory.h"

/*
 * The server as bin/server runs it (routes_handle and routes_unescape behind
 * libmicrohttpd), but with no listening socket and no thread: each input is
 * one client connection, a socketpair handed to MHD_add_connection and
 * driven by MHD_run in this thread, so a run is deterministic. The input
 * is written, the client half-closes, and what the server answers is read
 * until it closes its end (bounded by MAX_ROUNDS calls of MHD_run).
 *
 * The server runs --fixed (GET / frees its record: a leaky server would
 * grow by 40 KB per input and LeakSanitizer would rightly complain), and
 * with tracker/record/nohooks.c (ASan owns malloc), so /capture answers 503; the
 * /capture query parser has its own target, fuzz_query.
 *
 * Properties checked (abort() = a finding): the server does not crash or
 * trip a sanitizer; it ends the connection within MAX_ROUNDS; whatever it
 * answers starts with "HTTP/1.x NNN " and a status it can send.
 */

#define MAX_ROUNDS 4000   /* MHD_run calls per input before we call it a hang */
#define KEEP 4096         /* response bytes kept for the checks */

static struct MHD_Daemon *daemon_;
static routes_config cfg;

static void require(int ok, const char *what, const char *resp, size_t len)
{
    if (!ok) {
        fprintf(stderr, "fuzz_http: property violated: %s\n--- response (%zu bytes) ---\n%.*s\n",
                what, len, (int)(len < 512 ? len : 512), resp);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (user_directory_load() != 0) {
        fprintf(stderr, "fuzz_http: cannot load the user directory\n");
        abort();
    }
    stats_init("none", 1024u * 1024u * 1024u);
    cfg.leak = ROUTES_LEAK_NONE;
    cfg.leak_cap_mb = 1024;
    daemon_ = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, routes_handle, &cfg,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)2,
                               MHD_OPTION_UNESCAPE_CALLBACK, routes_unescape, (void *)NULL,
                               MHD_OPTION_END);
    if (daemon_ == NULL) {
        fprintf(stderr, "fuzz_http: MHD_start_daemon failed\n");
        abort();
    }
    return 0;
}

/* 1 when the status code s is one this server (or MHD for it) may send. */
static int known_status(int s)
{
    switch (s) {
    case 100: case 200: case 400: case 404: case 405: case 408: case 413: case 414: case 417:
    case 431: case 500: case 501: case 503: case 505:
        return 1;
    default:
        return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in peer;
    char resp[KEEP];
    size_t got = 0, total = 0, sent = 0;
    int sv[2], eof = 0, rounds;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_port = htons(40000);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (MHD_add_connection(daemon_, sv[0], (const struct sockaddr *)&peer, sizeof peer) != MHD_YES) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }

    for (rounds = 0; rounds < MAX_ROUNDS && !eof; rounds++) {
        if (sent < size) {
            ssize_t n = send(sv[1], data + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                sent = size; /* the server closed its end: stop writing */
            if (sent == size)
                shutdown(sv[1], SHUT_WR);
        }
        MHD_run(daemon_);
        for (;;) {
            char buf[8192];
            ssize_t n = recv(sv[1], buf, sizeof buf, 0);
            if (n > 0) {
                size_t take = (size_t)n < KEEP - got ? (size_t)n : KEEP - got;
                memcpy(resp + got, buf, take);
                got += take;
                total += (size_t)n;
                continue;
            }
            if (n == 0 || errno != EAGAIN)
                eof = 1;
            break;
        }
    }
    if (size == 0 && !eof) /* nothing sent: the shutdown above never ran */
        shutdown(sv[1], SHUT_WR);
    require(eof || size == 0, "the server ends the connection", resp, got);
    close(sv[1]);
    for (int i = 0; i < 8; i++)
        MHD_run(daemon_); /* let MHD see the close and free the connection */

    if (got > 0) {
        int status = 0;
        require(got >= 13 && (memcmp(resp, "HTTP/1.1 ", 9) == 0 || memcmp(resp, "HTTP/1.0 ", 9) == 0),
                "an answer starts with HTTP/1.x", resp, got);
        for (int i = 9; i < 12; i++) {
            require(resp[i] >= '0' && resp[i] <= '9', "a three-digit status", resp, got);
            status = status * 10 + (resp[i] - '0');
        }
        require(known_status(status), "a status this server sends", resp, got);
    }
    (void)total;
    return 0;
}
