/* Temporary files and folder syncs for atomic saves (see atomic.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "atomic.h"

ln_status ln_io_create_temp(ln_ctx *ctx, const char *who, const char *path, char **tmp_out,
                            int *fd_out) {
    size_t n = strlen(path) + 64;
    char *tmp = malloc(n);
    if (!tmp) return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of memory", who);
    for (int i = 0; i < 1000; i++) {
        snprintf(tmp, n, "%s.tmp.%ld.%d", path, (long)getpid(), i);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) { *tmp_out = tmp; *fd_out = fd; return LN_OK; }
        if (errno != EEXIST) break;
    }
    int e = errno;
    free(tmp);
    return ln_fail(ctx, LN_ERR_IO, "%s: cannot create a temporary file next to '%s': %s", who, path,
                   e == EEXIST ? "too many left over" : strerror(e));
}

void ln_io_sync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}
