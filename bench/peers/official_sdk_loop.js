// official_sdk_loop.js - @scalekit-sdk/node's actions.executeTool N times
// against grpc_server.js.   node official_sdk_loop.js PORT N
// Prints calls/s and peak RSS in MB.
const fs = require("fs");
const { ScalekitClient } = require("@scalekit-sdk/node");
const [port, n] = [process.argv[2], Number(process.argv[3])];
const call = {
  toolName: "twitter_user_lookup", toolInput: { id: "2244994945" },
  identifier: "bench", connector: "twitter",
};
(async () => {
  const sk = new ScalekitClient(`http://127.0.0.1:${port}`, "bench", "bench");
  const first = await sk.actions.executeTool(call);
  if (!first.data || first.data.data.username !== "XDevelopers") throw new Error("unexpected answer");
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await sk.actions.executeTool(call);
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  const hwm = fs.readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s*(\d+) kB/)[1];
  console.log((n / secs).toFixed(1), (Number(hwm) / 1024).toFixed(1));
})().catch((e) => { console.error(e); process.exit(1); });
