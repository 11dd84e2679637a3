// grpc_server.js - a loopback gRPC server answering ExecuteTool the way the
// official Node SDK expects (h2c, binary protobuf), for the benchmark.
// Prints "PORT <n>".  Built from the SDK's own service descriptors.
const http2 = require("http2");
const { connectNodeAdapter } = require("@connectrpc/connect-node");
const { ToolService } = require("@scalekit-sdk/node/lib/pkg/grpc/scalekit/v1/tools/tools_pb.js");

const user = { id: "2244994945", name: "X Developers", username: "XDevelopers" };
const routes = (router) => router.service(ToolService, {
  executeTool: async () => ({ data: { data: user }, executionId: "bench" }),
});
const server = http2.createServer(connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }));
server.listen(0, "127.0.0.1", () => console.log("PORT " + server.address().port));
