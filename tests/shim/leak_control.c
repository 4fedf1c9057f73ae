/* Control program for the scanfree shim: frees one block that still holds
 * the marker ($MARKER), moves one by realloc, frees one it zeroized first,
 * and keeps one alive until exit. The shim must report exactly two hits
 * (the free and the realloc) and the live block as residue at exit. */
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char *m = getenv("MARKER");
    if (!m) return 2;
    size_t n = strlen(m) + 1;
    char *leaked = malloc(n);          /* freed with the marker: a hit */
    memcpy(leaked, m, n);
    free(leaked);
    char *moved = malloc(n);           /* moved by realloc: a hit */
    memcpy(moved, m, n);
    moved = realloc(moved, 1 << 20);
    memset(moved, 0, 1 << 20);
    free(moved);
    char *wiped = malloc(n);           /* zeroized first: no hit */
    memcpy(wiped, m, n);
    memset(wiped, 0, n);
    __asm__ __volatile__("" : : "r"(wiped) : "memory");
    free(wiped);
    static char *volatile kept;        /* never freed: residue at exit */
    kept = malloc(n);
    memcpy(kept, m, n);
    return 0;
}
