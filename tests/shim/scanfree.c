/* LD_PRELOAD shim for tests/zeroize_cli.rs: checks that no heap block
 * freed by the process still holds a secret.
 *
 * - free(p): the whole usable size of the block is scanned before it is
 *   released.
 * - realloc(p, n): always moves (malloc + copy + free), so the old block is
 *   scanned whether or not glibc would have grown it in place.
 * - At exit (destructor), every writable anonymous mapping and the [heap]
 *   are scanned once more (read through /proc/self/mem): what a core dump
 *   taken at exit would show ("residue": live blocks never freed, and stale
 *   bytes in free chunks).
 *
 * Markers: the file $SCANFREE_MARKERS_FILE, one per line (at most 8, 127
 * bytes each).
 * Report: lines appended to the file $SCANFREE_LOG:
 *   hit <marker#> free|realloc <size>
 *   residue <marker#> heap|anon <offset-in-region>
 *   done scanned=<blocks> hits=<n> residue=<n>
 * Build: cc -shared -fPIC -o scanfree.so scanfree.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

#define MAX_MARKERS 8
static char markers[MAX_MARKERS][128];
static size_t marker_len[MAX_MARKERS];
static int n_markers = -1;
static int log_fd = -1;
static unsigned long scanned, hits, residue;
static int in_exit_scan;

static void say(const char *line, int n) {
    if (log_fd >= 0 && n > 0) (void)!write(log_fd, line, (size_t)n);
}

static void init(void) {
    static char list[MAX_MARKERS * 128];
    if (n_markers >= 0) return;
    n_markers = 0;
    /* The markers come from a file, not the environment: a process copies
     * its environment (std::process::Command, sh), and those copies would
     * be reported as leaks. */
    const char *file = getenv("SCANFREE_MARKERS_FILE");
    size_t len = 0;
    if (file) {
        int fd = (int)syscall(SYS_openat, AT_FDCWD, file, O_RDONLY | O_CLOEXEC);
        ssize_t r;
        while (fd >= 0 && len < sizeof list - 1 && (r = read(fd, list + len, sizeof list - 1 - len)) > 0)
            len += (size_t)r;
        if (fd >= 0) close(fd);
    }
    list[len] = 0;
    for (char *m = list; *m && n_markers < MAX_MARKERS;) {
        char *end = strchr(m, '\n');
        size_t n = end ? (size_t)(end - m) : strlen(m);
        if (n > 0 && n < sizeof markers[0]) {
            memcpy(markers[n_markers], m, n);
            marker_len[n_markers] = n;
            n_markers++;
        }
        memset(m, 0, n); /* leave one copy only: markers[] */
        if (!end) break;
        m = end + 1;
    }
    const char *path = getenv("SCANFREE_LOG");
    if (path)
        log_fd = (int)syscall(SYS_openat, AT_FDCWD, path,
                              O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

__attribute__((constructor)) static void start(void) { init(); }

static void scan_block(const void *p, size_t n, const char *how) {
    if (n_markers < 0) init();
    scanned++;
    for (int i = 0; i < n_markers; i++) {
        if (memmem(p, n, markers[i], marker_len[i])) {
            char line[96];
            hits++;
            say(line, snprintf(line, sizeof line, "hit %d %s %zu\n", i, how, n));
        }
    }
}

void free(void *p) {
    if (p && !in_exit_scan) scan_block(p, malloc_usable_size(p), "free");
    __libc_free(p);
}

void *realloc(void *p, size_t n) {
    if (!p) return __libc_malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    size_t old = malloc_usable_size(p);
    void *q = __libc_malloc(n);
    if (!q) return NULL;
    memcpy(q, p, old < n ? old : n);
    scan_block(p, old, "realloc");
    __libc_free(p);
    return q;
}

/* True if [a, a+n) overlaps [b, b+m). */
static int overlaps(unsigned long a, size_t n, unsigned long b, size_t m) {
    return a < b + m && b < a + n;
}

#define CHUNK (1UL << 20)

/* Scan writable private mappings without a file: [heap], thread arenas,
 * thread stacks and large anonymous allocations. The main [stack] (argv,
 * environ) is skipped. Memory is read through
 * /proc/self/mem, so a mapping that another thread unmaps meanwhile gives a
 * read error instead of a crash. */
__attribute__((destructor)) static void finish(void) {
    static char maps[1 << 16];
    in_exit_scan = 1;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    if (fd >= 0) {
        ssize_t r;
        while (len < sizeof maps - 1 && (r = read(fd, maps + len, sizeof maps - 1 - len)) > 0)
            len += (size_t)r;
        close(fd);
    }
    maps[len] = 0;
    /* rctoken makes itself non-dumpable (no core dumps), which also makes
     * /proc/self/* root's 0600 files that a non-root process cannot open.
     * At exit the secrets should be gone already: become dumpable again
     * for this last scan only. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    int mem = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/mem", O_RDONLY | O_CLOEXEC);
    char *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem < 0 || buf == MAP_FAILED) {
        /* No "done" line: the test fails instead of trusting a scan that
         * did not happen. */
        char out[96];
        say(out, snprintf(out, sizeof out, "failed: cannot read /proc/self/mem\n"));
        if (mem >= 0) close(mem);
        return;
    }
    for (char *line = maps; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        unsigned long lo, hi;
        char perms[8] = {0};
        int pathpos = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &pathpos) >= 3 &&
            perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p') {
            const char *path = pathpos ? line + pathpos : "";
            int heap = strcmp(path, "[heap]") == 0;
            if (heap || path[0] == 0) {
                /* Chunks overlap by 127 bytes so no marker straddles unseen. */
                for (unsigned long at = lo; at < hi; at += CHUNK - 127) {
                    size_t n = hi - at < CHUNK ? hi - at : CHUNK;
                    if (overlaps(at, n, (unsigned long)buf, CHUNK)) continue;
                    ssize_t got = pread(mem, buf, n, (off_t)at);
                    if (got <= 0) continue;
                    for (int i = 0; i < n_markers; i++) {
                        const char *p = buf, *f;
                        size_t left = (size_t)got;
                        while (left >= marker_len[i] && (f = memmem(p, left, markers[i], marker_len[i]))) {
                            unsigned long addr = at + (unsigned long)(f - buf);
                            left -= (size_t)(f - p) + 1;
                            p = f + 1;
                            /* Our own copy of the marker list (this .so's .bss),
                             * and each marker seen twice in the overlap. */
                            if (overlaps(addr, 1, (unsigned long)markers, sizeof markers)) continue;
                            if (at != lo && f - buf < 127) continue;
                            char out[96];
                            residue++;
                            say(out, snprintf(out, sizeof out, "residue %d %s %lu\n", i,
                                              heap ? "heap" : "anon", addr - lo));
                        }
                    }
                    if (n < CHUNK) break;
                }
            }
        }
        line = next;
    }
out:
    if (mem >= 0) close(mem);
    {
        char out[128];
        say(out, snprintf(out, sizeof out, "done scanned=%lu hits=%lu residue=%lu\n", scanned, hits, residue));
    }
}
