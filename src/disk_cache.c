/* disk_cache.c: compiled program binaries kept on disk between processes.
 *
 * Location: $CLBNB_CACHE_DIR, else $XDG_CACHE_HOME/clbnb, else ~/.cache/clbnb; CLBNB_CACHE_DIR=0
 * disables it. File name: 32 hex digits of an XXH3-128 hash over the library version, the source,
 * the build options and the device name, driver, device and platform versions. File layout:
 *   "CLBNBBIN" | u32 format version | u32 reserved | u64 payload size | u64 XXH64(payload) | payload
 * A file whose magic, version, size or checksum does not match is ignored (and overwritten by the
 * rebuild); writes go to a unique temp file renamed into place, so readers never see half a file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"

#define CACHE_MAGIC "CLBNBBIN"
#define CACHE_FORMAT_VERSION 1u

struct cache_header {
    char magic[8];
    uint32_t version;
    uint32_t reserved;
    uint64_t size;
    uint64_t checksum;
};

void clbnb_cache_dir_resolve(char *dir, size_t size) {
    const char *env = getenv("CLBNB_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    dir[0] = '\0';
    if (env && *env) {
        if (strcmp(env, "0") != 0) snprintf(dir, size, "%s", env);
    } else if (xdg && *xdg) {
        snprintf(dir, size, "%s/clbnb", xdg);
    } else if (home && *home) {
        snprintf(dir, size, "%s/.cache/clbnb", home);
    }
}

void clbnb_cache_key(const clbnb_context *ctx, const char *source, size_t source_len, const char *options,
                     char hex[33]) {
    XXH3_state_t *st = XXH3_createState();
    XXH128_hash_t h = {0, 0};
    if (st) {
        XXH3_128bits_reset(st);
        const char *parts[] = {clbnb_version(),          options,
                               ctx->info.device_name,    ctx->info.driver_version,
                               ctx->info.device_version, ctx->info.platform_version,
                               ctx->info.platform_name};
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
            XXH3_128bits_update(st, parts[i], strlen(parts[i]) + 1);
        XXH3_128bits_update(st, source, source_len);
        h = XXH3_128bits_digest(st);
        XXH3_freeState(st);
    } else {
        h = XXH3_128bits(source, source_len);
    }
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

unsigned char *clbnb_cache_load(const char *dir, const char *hex, size_t *size, int *rejected) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.clbin", dir, hex);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct cache_header h;
    unsigned char *bin = NULL;
    if (fread(&h, sizeof h, 1, f) == 1 && memcmp(h.magic, CACHE_MAGIC, 8) == 0 && h.version == CACHE_FORMAT_VERSION &&
        h.size > 0 && h.size < ((uint64_t)1 << 32)) {
        bin = malloc((size_t)h.size);
        if (bin && (fread(bin, 1, (size_t)h.size, f) != (size_t)h.size || fgetc(f) != EOF ||
                    XXH64(bin, (size_t)h.size, 0) != h.checksum)) {
            free(bin);
            bin = NULL;
        }
    }
    fclose(f);
    if (!bin) {
        *rejected += 1;
        return NULL;
    }
    *size = (size_t)h.size;
    return bin;
}

static int mkdir_p(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return 0;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST;
}

int clbnb_cache_store(const char *dir, const char *hex, const unsigned char *bin, size_t size) {
    if (!mkdir_p(dir)) return 0;
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s.clbin", dir, hex);
    /* unique per process and call, so concurrent writers never share a temp file */
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    char suffix[9];
    uint64_t r = XXH64(&bin, sizeof bin, (uint64_t)getpid() ^ (uint64_t)size);
    for (int i = 0; i < 8; i++)
        suffix[i] = letters[(r >> (i * 5)) % 26];
    suffix[8] = '\0';
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%s", path, (int)getpid(), suffix);
    FILE *f = fopen(tmp, "wb");
    if (!f) return 0;
    struct cache_header h;
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.version = CACHE_FORMAT_VERSION;
    h.reserved = 0;
    h.size = size;
    h.checksum = XXH64(bin, size, 0);
    int ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(bin, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return 0;
    }
    return 1;
}
