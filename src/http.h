/* http.h - the libcurl transport: one kept-alive session per SDK client. */
#ifndef SCALEKIT_HTTP_H
#define SCALEKIT_HTTP_H

#include "lua.h"

/* Sets http_new on the table at the top of the stack and initialises libcurl. */
void http_register(lua_State *L);

#endif
