/* LD_PRELOAD shim for tests/lake/test_concurrency.py: an ambiguous commit on local disk.
 *
 * deltalake commits a version on local disk by writing `_delta_log/N.json#1` and hard-linking
 * it to `_delta_log/N.json` (linkat fails if the name exists: that is the atomic part). When
 * the file named by $COMMIT_FAULT_FLAG exists, the next link of a log entry is made and then
 * reported as EIO, and the flag file is deleted (so the fault fires once): the version is
 * committed, the writer is told it failed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags) {
    static int (*real_linkat)(int, const char *, int, const char *, int);
    if (!real_linkat) real_linkat = dlsym(RTLD_NEXT, "linkat");
    int result = real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
    const char *flag = getenv("COMMIT_FAULT_FLAG");
    if (result != 0 || flag == NULL || strstr(newpath, "/_delta_log/") == NULL) return result;
    const char *name = strrchr(newpath, '/') + 1;
    if (strlen(name) != 25 || strcmp(name + 20, ".json") != 0) return result;
    if (unlink(flag) != 0) return result; /* not armed */
    errno = EIO;
    return -1;
}
