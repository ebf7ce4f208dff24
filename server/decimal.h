/* decimal.h - digits-only decimal parsing, shared by command-line options and query values. */
#ifndef DECIMAL_H
#define DECIMAL_H

/* Parse s, one or more ASCII digits and nothing else, into *out. Values
 * past hi are stored as hi + 1 (no overflow on any length), so a caller's
 * range check sees them as too large. Returns 0, or -1 (and *out
 * untouched) when s is empty or holds anything but digits (signs too). */
int decimal_parse(const char *s, unsigned long hi, unsigned long *out);

#endif /* DECIMAL_H */
