/* Pieces of the atomic save shared by the checkpoint writers (safetensors, pth): an
 * exclusive temporary file next to the target, and syncing the folder after the
 * rename. Private to core/src/io. */
#ifndef LUNET_IO_ATOMIC_H
#define LUNET_IO_ATOMIC_H

#include "../internal.h"

/* Creates `<path>.tmp.<pid>.<n>` exclusively (mode 0666 less the umask). On success
 * *tmp_out (malloc'd, freed by the caller) names it and *fd_out is open for writing.
 * `who` prefixes error messages ("save_safetensors", "pth"). */
ln_status ln_io_create_temp(ln_ctx *ctx, const char *who, const char *path, char **tmp_out,
                            int *fd_out);
/* Best effort: makes a rename in path's folder durable (the file is already synced). */
void ln_io_sync_parent_dir(const char *path);

#endif
