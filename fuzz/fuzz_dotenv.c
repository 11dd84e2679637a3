/* fuzz_dotenv.c - any bytes: the .env parser never crashes or reads out of
 * bounds, and every key it reports is a valid variable name. */
#include <stdlib.h>
#include <string.h>

#include "dotenv.h"

static void check(void *ud, const char *key, const char *value, int line) {
  size_t i;
  (void)ud; (void)line;
  if (key == NULL) return;
  if (value == NULL || key[0] == '\0' || (key[0] >= '0' && key[0] <= '9')) abort();
  for (i = 0; key[i]; i++) {
    char c = key[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) abort();
  }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  dotenv_parse((const char *)data, size, check, NULL);
  return 0;
}
