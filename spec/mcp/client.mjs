// client.mjs - drive `scalekit-lua --mcp` with the official MCP TypeScript
// SDK (Client over StdioClientTransport) and print what it saw as one JSON
// document, for spec/mcp_spec.lua to assert on.
//   node spec/mcp/client.mjs SCENARIO HOST [server args...]
// The server's environment is this process's (the spec sets the fake
// Scalekit's credentials).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ElicitRequestSchema, LoggingMessageNotificationSchema, ProgressNotificationSchema }
  from "@modelcontextprotocol/sdk/types.js";
import Ajv2020 from "ajv/dist/2020.js";

const [scenario, host, ...serverArgs] = process.argv.slice(2);

// Every progress notification, as it came. (The SDK's own onprogress drops
// the ones that arrive in the same read as the answer: it handles them a
// microtask later, after the answer removed the call's progress handler.)
const progressSeen = [];

async function connect(capabilities = {}, onElicit) {
  const client = new Client({ name: "mcp-spec", version: "1.0.0" }, { capabilities });
  const logs = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { logs.push(n.params); });
  client.setNotificationHandler(ProgressNotificationSchema, (n) => {
    const { progressToken, ...p } = n.params;
    progressSeen.push(p);
  });
  if (onElicit) client.setRequestHandler(ElicitRequestSchema, onElicit);
  // SERVER_LD_PRELOAD: the sanitizer runtime the server (not node) needs in the ASan run
  const env = { ...process.env };
  if (env.SERVER_LD_PRELOAD) env.LD_PRELOAD = env.SERVER_LD_PRELOAD;
  const transport = new StdioClientTransport({
    command: host, args: ["--no-env", "--mcp", ...serverArgs], env, stderr: "pipe",
  });
  await client.connect(transport);
  return { client, logs };
}

// Every tool, page after page.
async function allTools(client) {
  const tools = [];
  let cursor;
  let pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    tools.push(...r.tools);
    cursor = r.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  return { tools, pages };
}

// The code and message of a failed request.
async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { code: e.code, message: e.message };
  }
}

const scenarios = {
  async session() {
    const { client, logs } = await connect();
    const { tools, pages } = await allTools(client);
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    await client.setLoggingLevel("info");
    const ok = await client.callTool({ name: "twitter_user_me", arguments: {} });
    const invalid = await client.callTool({ name: "twitter_recent_search", arguments: { max_results: 5 } });
    const typo = await client.callTool({ name: "twitter_post_create", arguments: { txt: "hi" } });
    const unknown = await failure(client.callTool({ name: "twitter_no_such_tool", arguments: {} }));
    const limited = await client.callTool({ name: "twitter_post_likers_get", arguments: { id: "1720000000000000101" } });
    const ping = await client.ping();
    // every input schema compiles as JSON Schema 2020-12, and accepts {} exactly when nothing is required
    const ajv = new Ajv2020({ strict: false, validateFormats: false, logger: false });
    const invalidSchemas = tools.filter((t) => {
      try { ajv.compile(t.inputSchema); return false; } catch (e) { return true; }
    }).map((t) => t.name);
    const out = {
      server: client.getServerVersion(),
      capabilities: client.getServerCapabilities(), instructions: client.getInstructions(),
      count: tools.length, pages,
      schemasAreObjects: tools.every((t) => t.inputSchema && t.inputSchema.type === "object"),
      user_me: byName.twitter_user_me, post_delete_annotations: byName.twitter_post_delete.annotations,
      post_create_annotations: byName.twitter_post_create.annotations,
      ok, invalid, typo, unknown, limited, ping, logs, invalidSchemas,
    };
    await client.close();
    return out;
  },

  async not_connected() {
    const { client } = await connect();
    const r = await client.callTool({ name: "twitter_user_me", arguments: {} });
    await client.close();
    return r;
  },

  async progress() {
    const { client } = await connect();
    // onprogress makes the SDK send a progress token; what came is in progressSeen
    const r = await client.callTool({ name: "twitter_user_me", arguments: {} }, undefined,
      { onprogress: () => {} });
    await client.close();
    return { result: r, progress: progressSeen };
  },

  // A large upload in direct mode (two 2 MiB chunks) with a progress token.
  async upload_progress() {
    const { client } = await connect();
    const bytes = Buffer.alloc(2_500_000, 7);
    const r = await client.callTool({ name: "twitter_media_upload_large", arguments: {
      media_data: bytes.toString("base64"), media_type: "video/mp4", total_bytes: bytes.length } },
      undefined, { onprogress: () => {}, timeout: 60000 });
    await client.close();
    return { result: r, progress: progressSeen };
  },

  async read_only() {
    const { client } = await connect();
    const { tools } = await allTools(client);
    const write = await failure(client.callTool({ name: "twitter_post_create", arguments: { text: "no" } }));
    await client.close();
    return { count: tools.length, allRead: tools.every((t) => t.annotations.readOnlyHint === true),
             names: tools.map((t) => t.name).sort(), write };
  },

  async confirm_accept() {
    const asked = [];
    const { client } = await connect({ elicitation: {} }, async (req) => {
      asked.push(req.params);
      return { action: "accept", content: { confirm: true } };
    });
    const read = await client.callTool({ name: "twitter_user_me", arguments: {} });
    const write = await client.callTool({ name: "twitter_post_create", arguments: { text: "asked first" } });
    await client.close();
    return { asked, read, write };
  },

  async confirm_decline() {
    const { client } = await connect({ elicitation: {} }, async () => ({ action: "decline" }));
    const write = await client.callTool({ name: "twitter_post_create", arguments: { text: "never" } });
    await client.close();
    return { write };
  },

  async confirm_unsupported() {
    const { client } = await connect();
    const write = await client.callTool({ name: "twitter_post_create", arguments: { text: "never" } });
    await client.close();
    return { write };
  },

  // Two calls at once, the first slow (the fake delays it); a ping while
  // they run; then a slow call cancelled by the client.
  async concurrent() {
    const { client } = await connect();
    const order = [];
    const slow = client.callTool({ name: "twitter_user_me", arguments: {} }).then((r) => { order.push("slow"); return r; });
    const fast = client.callTool({ name: "twitter_recent_search", arguments: { query: "lua" } })
      .then((r) => { order.push("fast"); return r; });
    await new Promise((r) => setTimeout(r, 100));
    const pingStart = Date.now();
    await client.ping();
    order.push("ping");
    const pingMs = Date.now() - pingStart;
    const [s, f] = await Promise.all([slow, fast]);
    const controller = new AbortController();
    const cancelled = client.callTool({ name: "twitter_user_me", arguments: {} }, undefined,
      { signal: controller.signal }).then(() => "answered", (e) => `${e.name}: ${e.message}`);
    await new Promise((r) => setTimeout(r, 200));
    controller.abort("user gave up");
    const after = await client.callTool({ name: "twitter_post_create", arguments: { text: "still here" } });
    await client.close();
    return { order, pingMs, slowOk: !s.isError, fastOk: !f.isError, cancelled: await cancelled,
             after: after.structuredContent.data.text };
  },

  async script() {
    const { client } = await connect();
    const { tools } = await allTools(client);
    const shout = await client.callTool({ name: "shout", arguments: { text: "hello" } });
    const post = await client.callTool({ name: "twitter_post_create", arguments: { text: "wrapped" } });
    await client.close();
    return { shout_tool: tools.find((t) => t.name === "shout"), count: tools.length, shout, post };
  },
};

const run = scenarios[scenario];
if (!run) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
run().then((out) => {
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}, (e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
