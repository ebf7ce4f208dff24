/* xalloc.h - the exercises' allocation wrappers: malloc that never returns NULL, as many C programs write it. */
#ifndef XALLOC_H
#define XALLOC_H

#include <stddef.h>

/* malloc(n), or abort with a message when memory runs out: callers need no NULL check. */
void *xmalloc(size_t n);

/* A copy of s in xmalloc'ed memory. */
char *xstrdup(const char *s);

#endif /* XALLOC_H */
