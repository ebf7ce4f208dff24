/* dashboard.c - serves the live dashboard (server/dashboard/), embedded into the binary with .incbin. */
#include "dashboard.h"

#include <stddef.h>
#include <string.h>

#include "http_reply.h"

/* ------------------------------------------------------------ embedded files */

/*
 * Each file of server/dashboard/ is pulled into .rodata by the assembler's
 * .incbin, between a start and an end label: no generator, no xxd, only gcc
 * and binutils. The paths are relative to the directory the compiler runs
 * in: the top of the tree, where the Makefile compiles the server sources
 * (it also lists the files of server/dashboard/ as prerequisites of the
 * servers, so an edited asset rebuilds them). The labels are local to this
 * object file.
 */
#define DASHBOARD_EMBED(sym, path)                                     \
    __asm__(".pushsection .rodata\n"                                   \
            ".balign 16\n"                                             \
            ".type " #sym "_start, @object\n"                          \
            #sym "_start:\n"                                           \
            ".incbin \"" path "\"\n"                                   \
            #sym "_end:\n"                                             \
            ".size " #sym "_start, . - " #sym "_start\n"               \
            ".popsection\n");                                          \
    extern const char sym##_start[] __attribute__((visibility("hidden"))); \
    extern const char sym##_end[] __attribute__((visibility("hidden")))

DASHBOARD_EMBED(dashboard_html, "server/dashboard/dashboard.html");
DASHBOARD_EMBED(dashboard_js, "server/dashboard/dashboard.js");
DASHBOARD_EMBED(dashboard_css, "server/dashboard/dashboard.css");

/* One servable file: where it is answered, its type, its bytes. */
typedef struct dashboard_asset {
    const char *url;   /* exact request path */
    const char *ctype; /* Content-Type header value */
    const char *start; /* first byte of the embedded file */
    const char *end;   /* one past its last byte */
} dashboard_asset;

static const dashboard_asset assets[] = {
    {"/dashboard", "text/html; charset=utf-8", dashboard_html_start, dashboard_html_end},
    {"/dashboard/", "text/html; charset=utf-8", dashboard_html_start, dashboard_html_end},
    {"/dashboard/dashboard.js", "text/javascript; charset=utf-8", dashboard_js_start,
     dashboard_js_end},
    {"/dashboard/dashboard.css", "text/css; charset=utf-8", dashboard_css_start,
     dashboard_css_end},
};

/* ------------------------------------------------------------ public */

int dashboard_match(const char *url)
{
    return strcmp(url, "/dashboard") == 0 || strncmp(url, "/dashboard/", 11) == 0;
}

enum MHD_Result dashboard_handle(struct MHD_Connection *conn, const char *url)
{
    char shown[48];
    size_t i;

    for (i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        if (strcmp(url, assets[i].url) == 0)
            return http_reply_header(conn, MHD_HTTP_OK, assets[i].ctype, assets[i].start,
                                     (size_t)(assets[i].end - assets[i].start),
                                     MHD_RESPMEM_PERSISTENT, MHD_HTTP_HEADER_CACHE_CONTROL,
                                     "no-cache");
    }
    return http_reply_reason(conn, MHD_HTTP_NOT_FOUND,
                             "no such dashboard file: %s (the page is /dashboard)",
                             http_printable(url, shown, sizeof shown));
}
