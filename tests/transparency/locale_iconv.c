/* locale_iconv.c - locales and character sets (glibc loads gconv modules and locale data, and
 * allocates in them): setlocale, iconv to UTF-16 and Latin-1, wide characters, regex, strcoll. */

#include <iconv.h>
#include <locale.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

static void convert(const char *to, const char *text)
{
    iconv_t cd = iconv_open(to, "UTF-8");
    if (cd == (iconv_t)-1) { printf("iconv_open %s failed\n", to); return; }
    char out[256], *ip = (char *)text, *op = out;
    size_t il = strlen(text), ol = sizeof out;
    size_t r = iconv(cd, &ip, &il, &op, &ol);
    printf("%s:", to);
    for (char *c = out; c < op; c++) printf(" %02x", (unsigned char)*c);
    printf(" (%s)\n", r == (size_t)-1 ? "error" : "ok");
    iconv_close(cd);
}

static int by_coll(const void *a, const void *b) { return strcoll(*(char *const *)a, *(char *const *)b); }

int main(void)
{
    const char *l = setlocale(LC_ALL, "C.UTF-8");
    printf("locale: %s\n", l ? l : "(none)");
    const char *text = "h\xc3\xa9llo w\xc3\xb6rld";
    for (int i = 0; i < 20; i++) {
        if (i == 0) { convert("UTF-16LE", text); convert("ISO-8859-1", text); }
        else { iconv_t cd = iconv_open("UTF-16LE", "UTF-8"); iconv_close(cd); }
    }
    wchar_t w[64];
    size_t n = mbstowcs(w, text, 64);
    printf("wide chars: %zu\n", n);
    regex_t re;
    regmatch_t m[3];
    if (regcomp(&re, "(w[^ ]*)rld$|([0-9]+)", REG_EXTENDED) == 0) {
        int rc = regexec(&re, text, 3, m, 0);
        printf("regex: %s at %d..%d\n", rc ? "no match" : "match", (int)m[0].rm_so, (int)m[0].rm_eo);
        regfree(&re);
    }
    char *words[] = { "pear", "Apple", "banana", "apple", "Zebra" };
    qsort(words, 5, sizeof words[0], by_coll);
    printf("sorted: %s %s %s %s %s\n", words[0], words[1], words[2], words[3], words[4]);
    struct tm tm = { .tm_year = 124, .tm_mon = 1, .tm_mday = 29, .tm_hour = 12 };
    char buf[100];
    strftime(buf, sizeof buf, "%A %d %B %Y %X", &tm);
    printf("date: %s\n", buf);
    return 0;
}
