/*
 * fuzz_main.c: a main() for the fuzz harnesses where libFuzzer is not
 * linked (the default and tsan presets, gcc): it runs the harness on every
 * file named, or in a directory named, and on N mutants of each (random
 * byte changes from a fixed seed), so that the seed corpus is a regression
 * test in every preset and a crash artifact replays anywhere.
 *
 * Usage: fuzz_X [--mutate N] [--seed S] FILE|DIR...
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fz.h"

#define FM_MAXLEN 65536

static uint64_t fm_rng = 0x9e3779b97f4a7c15ull;
static unsigned long fm_runs;

static uint64_t fm_rand(void)
{
	fm_rng ^= fm_rng << 13;
	fm_rng ^= fm_rng >> 7;
	fm_rng ^= fm_rng << 17;
	return fm_rng;
}

/* Change, insert or erase a few bytes of buf (len in *n, room FM_MAXLEN). */
static void fm_mutate(uint8_t *buf, size_t *n)
{
	unsigned k = 1 + (unsigned)(fm_rand() % 4);
	for (unsigned i = 0; i < k; i++) {
		size_t at = *n ? (size_t)(fm_rand() % *n) : 0;
		switch (fm_rand() % 4) {
		case 0:
		case 1:
			if (*n)
				buf[at] = (uint8_t)fm_rand();
			break;
		case 2:
			if (*n < FM_MAXLEN) {
				memmove(buf + at + 1, buf + at, *n - at);
				buf[at] = (uint8_t)fm_rand();
				(*n)++;
			}
			break;
		default:
			if (*n > 1) {
				memmove(buf + at, buf + at + 1, *n - at - 1);
				(*n)--;
			}
			break;
		}
	}
}

static void fm_run(const uint8_t *data, size_t n)
{
	/* A copy of exactly n bytes: ASan sees any read past the input. */
	uint8_t *copy = malloc(n ? n : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, n);
	LLVMFuzzerTestOneInput(copy, n);
	free(copy);
	fm_runs++;
}

static int fm_file(const char *path, unsigned mutants)
{
	static uint8_t buf[FM_MAXLEN], mut[FM_MAXLEN];
	FILE *fp = fopen(path, "rb");
	if (fp == NULL) {
		perror(path);
		return 1;
	}
	size_t n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	fm_run(buf, n);
	for (unsigned i = 0; i < mutants; i++) {
		size_t mn = n;
		memcpy(mut, buf, n);
		fm_mutate(mut, &mn);
		fm_run(mut, mn);
	}
	return 0;
}

static int fm_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order (a reproducible sequence). */
static int fm_dir(const char *dir, unsigned mutants)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		perror(dir);
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		size_t len = strlen(dir) + strlen(e->d_name) + 2;
		char *path = malloc(len);
		struct stat st;
		if (path == NULL)
			abort();
		snprintf(path, len, "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			names = realloc(names, cap * sizeof(*names));
			if (names == NULL)
				abort();
		}
		names[n++] = path;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), fm_cmp);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		rc |= fm_file(names[i], mutants);
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned mutants = 0;
	int rc = 0, inputs = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mutate") && i + 1 < argc) {
			mutants = (unsigned)strtoul(argv[++i], NULL, 0);
			continue;
		}
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			fm_rng = strtoull(argv[++i], NULL, 0) | 1;
			continue;
		}
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 2;
		}
		rc |= S_ISDIR(st.st_mode) ? fm_dir(argv[i], mutants)
					  : fm_file(argv[i], mutants);
		inputs++;
	}
	if (inputs == 0) {
		fprintf(stderr,
			"usage: %s [--mutate N] [--seed S] FILE|DIR...\n",
			argv[0]);
		return 2;
	}
	printf("%s: %lu inputs run%s\n", argv[0], fm_runs,
	       rc ? ", some files unreadable" : ", every check held");
	return rc;
}
