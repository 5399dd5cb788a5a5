/* test_cache.c: the on-disk program cache across processes. A child process (this binary with
 * --child) opens the device, builds every program and prints its build statistics:
 *   1st child on an empty directory: builds from source and saves binaries;
 *   2nd child: builds nothing from source (everything from disk);
 *   after corrupting every cache file: the files are rejected, rebuilt, and kernels still work;
 *   with an unwritable cache directory, and with the cache disabled: kernels still work. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_common.h"

/* Child: build everything, run the copy kernel, print "stats <from_source> <from_disk> <rejected>
 * <write_failures> <copy_ok> <build_ms>". */
static int child(void) {
    clbnb_context *ctx = test_context();
    clbnb_status s = clbnb_context_warm_up(ctx, NULL, NULL);
    unsigned char src[1000], dst[1000];
    for (int i = 0; i < 1000; i++)
        src[i] = (unsigned char)(i * 7);
    cl_mem a = test_buffer_from(ctx, src, sizeof src), b = test_buffer(ctx, sizeof dst);
    int ok = s == CLBNB_SUCCESS &&
             clbnb_buffer_copy(ctx, test_queue(ctx), b, 0, a, 0, sizeof src, 0, NULL, NULL) == CLBNB_SUCCESS;
    test_download(ctx, b, 0, dst, sizeof dst);
    ok = ok && memcmp(src, dst, sizeof src) == 0;
    clbnb_build_stats st;
    clbnb_context_build_stats(ctx, &st);
    printf("stats %u %u %u %u %d %.1f\n", st.programs_from_source, st.programs_from_disk, st.cache_rejected,
           st.cache_write_failures, ok, st.build_ms);
    clReleaseMemObject(a);
    clReleaseMemObject(b);
    clbnb_context_free(ctx);
    return 0;
}

struct stats {
    unsigned src, disk, rejected, wfail;
    int ok;
    double ms;
};

static struct stats run_child(const char *self, const char *cache_dir) {
    struct stats st = {0, 0, 0, 0, 0, -1};
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "CLBNB_CACHE_DIR='%s' '%s' --child", cache_dir, self);
    FILE *p = popen(cmd, "r");
    if (!p) return st;
    char line[512];
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "stats %u %u %u %u %d %lf", &st.src, &st.disk, &st.rejected, &st.wfail, &st.ok, &st.ms) == 6)
            break;
    pclose(p);
    return st;
}

static int corrupt_all(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".clbin")) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r+b");
        if (!f) continue;
        /* flip bytes in the payload: header intact, checksum no longer matches */
        fseek(f, 40, SEEK_SET);
        fputs("garbage-garbage-garbage", f);
        fclose(f);
        n++;
    }
    closedir(d);
    return n;
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".clbin") != NULL;
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child();
    char dir[] = "/tmp/clbnb-cache-test-XXXXXX";
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", dir);

    struct stats first = run_child(argv[0], cache);
    TEST_CHECK(first.ok, "first process: kernels work");
    TEST_CHECK(first.src > 0 && first.disk == 0, "first process builds from source (%u from source, %u from disk)",
               first.src, first.disk);
    int files = count_files(cache);
    TEST_CHECK(files >= (int)first.src, "binaries saved (%d files for %u builds)", files, first.src);

    struct stats second = run_child(argv[0], cache);
    TEST_CHECK(second.ok, "second process: kernels work");
    TEST_CHECK(second.src == 0 && second.disk == first.src,
               "second process builds nothing (%u from source, %u from disk)", second.src, second.disk);
    printf("build time: first process %.1f ms, second process %.1f ms\n", first.ms, second.ms);

    /* a foreign file under a cache name and corrupted payloads are rejected, never trusted */
    TEST_CHECK(corrupt_all(cache) == files, "corrupted every cache file");
    struct stats third = run_child(argv[0], cache);
    TEST_CHECK(third.ok, "after corruption: kernels still work");
    TEST_CHECK(third.rejected >= (unsigned)files && third.src == first.src,
               "corrupt files rejected and rebuilt (%u rejected, %u rebuilt)", third.rejected, third.src);
    struct stats fourth = run_child(argv[0], cache);
    TEST_CHECK(fourth.ok && fourth.src == 0, "rebuilt binaries were saved again (%u from source)", fourth.src);

    /* unwritable cache location: a path below a regular file can never be created (works as root,
     * where permission bits would not stop us) */
    char blocked[700];
    snprintf(blocked, sizeof blocked, "%s/file", dir);
    FILE *f = fopen(blocked, "w");
    if (f) fclose(f);
    strcat(blocked, "/cache");
    struct stats ro = run_child(argv[0], blocked);
    TEST_CHECK(ro.ok, "unwritable cache: kernels still work");
    TEST_CHECK(ro.src > 0 && ro.wfail == ro.src, "unwritable cache: every save fails quietly (%u of %u)", ro.wfail,
               ro.src);
    if (geteuid() != 0) {
        char rodir[700];
        snprintf(rodir, sizeof rodir, "%s/readonly", dir);
        mkdir(rodir, 0555);
        struct stats ro2 = run_child(argv[0], rodir);
        TEST_CHECK(ro2.ok && ro2.wfail == ro2.src, "read-only directory: kernels work, saves fail quietly");
        chmod(rodir, 0755);
    }
    /* disabled */
    struct stats off = run_child(argv[0], "0");
    TEST_CHECK(off.ok && off.disk == 0 && off.wfail == 0, "CLBNB_CACHE_DIR=0 disables the cache");

    char rm[700];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    TEST_CHECK(system(rm) == 0, "cleanup");
    return test_finish();
}
