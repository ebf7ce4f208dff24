/* decimal.c - digits-only decimal parsing, shared by command-line options and query values. */
#include "decimal.h"

int decimal_parse(const char *s, unsigned long hi, unsigned long *out)
{
    unsigned long v = 0;
    const char *p;

    if (*s == '\0')
        return -1;
    for (p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v <= hi) /* stop growing once out of range */
            v = v * 10 + (unsigned long)(*p - '0');
    }
    *out = v > hi ? hi + 1 : v;
    return 0;
}
