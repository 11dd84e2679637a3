/*
 * dotenv.c - a strict, bounded parser for .env files.
 *
 * Accepted: blank lines; "# comments"; lines "[export ]KEY=VALUE" where KEY is
 * [A-Za-z_][A-Za-z0-9_]* (at most 128 bytes) and VALUE is unquoted (trimmed,
 * " #..." comment dropped), 'single quoted' (literal) or "double quoted"
 * (\n \r \t \" \\ escapes).  A malformed line is reported by number and
 * skipped; its value is never echoed.  Values are capped at 64 KiB.
 */
#include "dotenv.h"

#include <string.h>

#define DOTENV_MAX_KEY 128
#define DOTENV_MAX_VALUE 65536

static int is_key_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_key_char(char c) {
  return is_key_start(c) || (c >= '0' && c <= '9');
}

/* Parses one line [p, end).  Returns 1 and fills key/value for an
 * assignment, 0 for a blank or comment line, -1 for a malformed line. */
static int parse_line(const char *p, const char *end, char *key, char *value) {
  size_t k = 0, v = 0;
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  if (p == end || *p == '#') return 0;
  if (end - p > 7 && memcmp(p, "export ", 7) == 0) {
    p += 7;
    while (p < end && *p == ' ') p++;
  }
  if (p == end || !is_key_start(*p)) return -1;
  while (p < end && is_key_char(*p)) {
    if (k + 1 >= DOTENV_MAX_KEY) return -1;
    key[k++] = *p++;
  }
  key[k] = '\0';
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  if (p == end || *p != '=') return -1;
  p++;
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  if (p < end && (*p == '\'' || *p == '"')) {
    char q = *p++;
    for (;;) {
      char c;
      if (p == end) return -1;                 /* unterminated quote */
      c = *p++;
      if (c == q) break;
      if (q == '"' && c == '\\' && p < end) {
        char e = *p++;
        c = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
      }
      if (v + 1 >= DOTENV_MAX_VALUE) return -1;
      value[v++] = c;
    }
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p < end && *p != '#') return -1;       /* junk after the closing quote */
  } else {
    const char *start = p, *stop;
    while (p < end && !(*p == '#' && (p == start || p[-1] == ' ' || p[-1] == '\t'))) p++;
    stop = p;
    while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t')) stop--;
    if ((size_t)(stop - start) + 1 >= DOTENV_MAX_VALUE) return -1;
    memcpy(value, start, (size_t)(stop - start));
    v = (size_t)(stop - start);
  }
  value[v] = '\0';
  return 1;
}

int dotenv_parse(const char *text, size_t len, dotenv_fn fn, void *ud) {
  static char key[DOTENV_MAX_KEY], value[DOTENV_MAX_VALUE];
  const char *p = text, *end = text + len;
  int line = 0, bad = 0;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *stop = eol ? eol : end;
    int r;
    line++;
    if (stop > p && stop[-1] == '\r') stop--;
    r = parse_line(p, stop, key, value);
    if (r > 0) fn(ud, key, value, line);
    else if (r < 0) { bad++; fn(ud, NULL, NULL, line); }
    p = eol ? eol + 1 : end;
  }
  return bad;
}
