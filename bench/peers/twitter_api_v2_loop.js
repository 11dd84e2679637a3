// twitter_api_v2_loop.js - twitter-api-v2's v2.user() N times against a local
// TLS server.   node twitter_api_v2_loop.js BASE_URL N   (NODE_EXTRA_CA_CERTS trusts it)
// Prints calls/s and peak RSS in MB.  The client's prefix is pointed at BASE_URL.
const { TwitterApi } = require("twitter-api-v2");
const fs = require("fs");
const [base, n] = [process.argv[2], Number(process.argv[3])];
(async () => {
  const v2 = new TwitterApi("bench-token").v2;
  v2.setPrefix(base + "/2/");
  const first = await v2.user("2244994945");
  if (first.data.username !== "XDevelopers") throw new Error("unexpected answer");
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await v2.user("2244994945");
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  const hwm = fs.readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s*(\d+) kB/)[1];
  console.log((n / secs).toFixed(1), (Number(hwm) / 1024).toFixed(1));
})().catch((e) => { console.error(e); process.exit(1); });
