/*
 * c_loop.c - the reference for the call-overhead benchmark: the fastest a C
 * program can send the same request over one kept-alive libcurl connection.
 *   c_loop URL METHOD BODY N [HEADER...]   (BODY "-" for none; CAFILE=... trusts a private CA)
 * Prints the calls per second and the peak RSS in MB (the floor for a
 * process that loads libcurl); exits 1 on any failure or non-2xx answer.
 * POLICIES=gzip,timeouts,stall,callbacks,share turns on the transfer
 * policies the SDK's session sets (src/http.c), to price each in libcurl.
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

/* The header block kept, as the SDK's session keeps it (capped). */
static size_t keep_header(char *p, size_t size, size_t n, void *ud) {
  static char block[16384];
  static size_t used;
  size_t len = size * n;
  (void)ud;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) used = 0;
  if (len > sizeof block - used) return 0;
  memcpy(block + used, p, len);
  used += len;
  return len;
}

/* The pre-request check the SDK makes (one attempt per request). */
static int count_attempt(void *ud, char *ip, char *local_ip, int port, int local_port) {
  (void)ip; (void)local_ip; (void)port; (void)local_port;
  ++*(long *)ud;
  return CURL_PREREQFUNC_OK;
}

/* True when the comma-separated POLICIES list names `name`. */
static int policy_on(const char *name) {
  const char *list = getenv("POLICIES"), *p;
  size_t len = strlen(name);
  for (p = list; p != NULL && (p = strstr(p, name)) != NULL; p += len)
    if ((p == list || p[-1] == ',') && (p[len] == '\0' || p[len] == ',')) return 1;
  return 0;
}

/* The per-request policies, set before each transfer as the SDK does. */
static void per_request_policies(CURL *e, int timeouts, int stall) {
  if (timeouts) {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  }
  if (stall) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
  }
}

int main(int argc, char **argv) {
  struct curl_slist *headers = NULL;
  struct timespec t0, t1;
  CURL *e;
  CURLSH *share = NULL;
  long i, n, status = 0, attempts = 0;
  int k, timeouts = policy_on("timeouts"), stall = policy_on("stall");
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
  if (policy_on("gzip")) curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
  if (policy_on("callbacks")) {
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, keep_header);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, count_attempt);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &attempts);
  }
  if (policy_on("share")) {
    share = curl_share_init();
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_easy_setopt(e, CURLOPT_SHARE, share);
  }
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
    per_request_policies(e, timeouts, stall);
    if (curl_easy_perform(e) != CURLE_OK) return 1;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.1f %.1f\n", (double)n / ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9),
         peak_rss_mb());
  curl_slist_free_all(headers);
  curl_easy_cleanup(e);
  if (share) curl_share_cleanup(share);
  curl_global_cleanup();
  return 0;
}
