/* LD_PRELOAD shim for tests/fs_hardening.rs: records every file and
 * directory creation (with the mode asked for) and every chmod, so the test
 * can prove that store files get their final mode at creation and that
 * nothing is chmod-ed afterwards (no window with wider permissions).
 *
 * Lines go to the file named by $SHIM_LOG:
 *   open <mode-octal> <path>      (open/openat with O_CREAT or O_TMPFILE)
 *   mkdir <mode-octal> <path>
 *   chmod <mode-octal> <path>     (chmod, fchmodat, lchmod)
 *   fchmod <mode-octal> <fd>
 * Build: cc -shared -fPIC -o modes.so modes.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int log_fd = -1;

static void note(const char *what, unsigned mode, const char *path) {
    if (log_fd < 0) {
        const char *p = getenv("SHIM_LOG");
        if (!p) return;
        /* The raw syscall: our own open wrappers must not log this. */
        log_fd = (int)syscall(SYS_openat, AT_FDCWD, p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (log_fd < 0) return;
    }
    char line[4200];
    int n = snprintf(line, sizeof line, "%s %o %s\n", what, mode & 07777, path ? path : "?");
    if (n > 0) (void)!write(log_fd, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

#define NEEDS_MODE(flags) (((flags) & O_CREAT) || (((flags) & O_TMPFILE) == O_TMPFILE))

#define WRAP_OPEN(name)                                                        \
    int name(const char *path, int flags, ...) {                               \
        static int (*real)(const char *, int, ...);                            \
        if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name); \
        mode_t mode = 0;                                                       \
        if (NEEDS_MODE(flags)) {                                               \
            va_list ap; va_start(ap, flags); mode = (mode_t)va_arg(ap, int); va_end(ap); \
            note("open", mode, path);                                          \
        }                                                                      \
        return real(path, flags, mode);                                        \
    }
WRAP_OPEN(open)
WRAP_OPEN(open64)

#define WRAP_OPENAT(name)                                                      \
    int name(int dirfd, const char *path, int flags, ...) {                    \
        static int (*real)(int, const char *, int, ...);                       \
        if (!real) real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name); \
        mode_t mode = 0;                                                       \
        if (NEEDS_MODE(flags)) {                                               \
            va_list ap; va_start(ap, flags); mode = (mode_t)va_arg(ap, int); va_end(ap); \
            note("open", mode, path);                                          \
        }                                                                      \
        return real(dirfd, path, flags, mode);                                 \
    }
WRAP_OPENAT(openat)
WRAP_OPENAT(openat64)

int creat(const char *path, mode_t mode) {
    note("open", mode, path);
    return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int mkdir(const char *path, mode_t mode) {
    static int (*real)(const char *, mode_t);
    if (!real) real = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "mkdir");
    note("mkdir", mode, path);
    return real(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode) {
    static int (*real)(int, const char *, mode_t);
    if (!real) real = (int (*)(int, const char *, mode_t))dlsym(RTLD_NEXT, "mkdirat");
    note("mkdir", mode, path);
    return real(dirfd, path, mode);
}

int chmod(const char *path, mode_t mode) {
    static int (*real)(const char *, mode_t);
    if (!real) real = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "chmod");
    note("chmod", mode, path);
    return real(path, mode);
}

int fchmodat(int dirfd, const char *path, mode_t mode, int flags) {
    static int (*real)(int, const char *, mode_t, int);
    if (!real) real = (int (*)(int, const char *, mode_t, int))dlsym(RTLD_NEXT, "fchmodat");
    note("chmod", mode, path);
    return real(dirfd, path, mode, flags);
}

int fchmod(int fd, mode_t mode) {
    static int (*real)(int, mode_t);
    if (!real) real = (int (*)(int, mode_t))dlsym(RTLD_NEXT, "fchmod");
    char buf[32];
    snprintf(buf, sizeof buf, "%d", fd);
    note("fchmod", mode, buf);
    return real(fd, mode);
}
