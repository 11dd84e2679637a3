/*
 * c_loop.c - the reference for the call-overhead benchmark: the fastest a C
 * program can send the same request over one kept-alive libcurl connection.
 *   c_loop URL METHOD BODY N [HEADER...]   (BODY "-" for none; CAFILE=... trusts a private CA)
 * Prints the calls per second and the peak RSS in MB (the floor for a
 * process that loads libcurl); exits 1 on any failure or non-2xx answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

/* VmHWM of this process in MB, or 0 when /proc is not there. */
static double peak_rss_mb(void) {
  char line[256];
  double kb = 0;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) kb = atof(line + 6);
  fclose(f);
  return kb / 1024.0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p; (void)ud;
  return size * n;
}

int main(int argc, char **argv) {
  struct curl_slist *headers = NULL;
  struct timespec t0, t1;
  CURL *e;
  long i, n, status = 0;
  int k;
  if (argc < 5) {
    fprintf(stderr, "usage: c_loop URL METHOD BODY N [HEADER...]\n");
    return 2;
  }
  n = atol(argv[4]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  for (k = 5; k < argc; k++) headers = curl_slist_append(headers, argv[k]);
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (getenv("CAFILE")) curl_easy_setopt(e, CURLOPT_CAINFO, getenv("CAFILE"));
  if (strcmp(argv[3], "-") != 0) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, argv[3]);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(argv[3]));
  }
  if (strcmp(argv[2], "GET") != 0 && strcmp(argv[2], "POST") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, argv[2]);
  /* connect (and the TLS handshake) outside the timed loop, as the SDK's
   * loops do with their first call */
  if (curl_easy_perform(e) != CURLE_OK) return 1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < n; i++) {
    if (curl_easy_perform(e) != CURLE_OK) return 1;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.1f %.1f\n", (double)n / ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9),
         peak_rss_mb());
  curl_slist_free_all(headers);
  curl_easy_cleanup(e);
  curl_global_cleanup();
  return 0;
}
