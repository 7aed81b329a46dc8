/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/replay.c - the plain driver of the fuzz targets: make check
 * runs every saved input (the seed corpus and every crash ever found)
 * through the same LLVMFuzzerTestOneInput that libFuzzer drives, built
 * with the ordinary compiler, so a bug once fixed stays fixed without
 * clang.
 *
 *   replay-TARGET [FILE|DIR]...
 *
 * Without arguments it replays the directories it was built with
 * (EDDY_FUZZ_DIRS: the target's corpus/ and crashes/ in the source tree).
 * A target reports a broken promise by aborting, so a failure names the
 * input on stderr before the abort. Fails when it found nothing to replay:
 * a test that ran no input would pass for the wrong reason.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long replayed;

static int replay_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  size_t n;
  while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      uint8_t *grown = realloc(buf, cap *= 2);
      if (grown == NULL)
        free(buf);
      buf = grown;
    }
  }
  int bad = buf == NULL || ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "replay: %s: cannot read it\n", path);
    free(buf);
    return -1;
  }
  /* Named before it runs: an abort inside says nothing else about it. */
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  replayed++;
  return 0;
}

/* Every regular file in @dir (not recursing: corpus directories are flat).
 * A missing directory is not an error: a target may have no crashes yet. */
static int replay_dir(const char *dir)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return errno == ENOENT ? 0 : (fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno)), -1);
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue; /* ., .. and placeholders such as .gitkeep */
    size_t n = strlen(dir) + strlen(e->d_name) + 2;
    char *path = malloc(n);
    if (path == NULL) {
      rc = -1;
      break;
    }
    snprintf(path, n, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && replay_file(path) < 0)
      rc = -1;
    free(path);
  }
  closedir(d);
  return rc;
}

static int replay_path(const char *path)
{
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return replay_dir(path);
  return replay_file(path);
}

int main(int argc, char **argv)
{
  static const char *const builtin[] = {EDDY_FUZZ_DIRS};
  int rc = 0;

  if (argc > 1) {
    for (int i = 1; i < argc; i++)
      rc |= replay_path(argv[i]);
  } else {
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
      rc |= replay_path(builtin[i]);
  }
  if (replayed == 0) {
    fprintf(stderr, "replay: no input found\n");
    return 1;
  }
  fprintf(stderr, "replay: %lu inputs, all passed\n", replayed);
  return rc ? 1 : 0;
}
