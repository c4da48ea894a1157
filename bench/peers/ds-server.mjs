// Starts the Durable Streams reference server (@durable-streams/server, the
// version bench/run.sh pins) on 127.0.0.1 for bench/run.sh.
// usage: node ds-server.mjs PORT [DATA_DIR]   (no DATA_DIR: in-memory store)
// Prints "listening PORT" once it accepts connections; stops on SIGTERM.
import { DurableStreamTestServer } from "@durable-streams/server";

const port = Number(process.argv[2]);
const dataDir = process.argv[3];
const server = new DurableStreamTestServer({
  port,
  host: "127.0.0.1",
  ...(dataDir ? { dataDir } : {}),
});
await server.start();
console.log(`listening ${port}`);
process.on("SIGTERM", async () => {
  await server.stop();
  process.exit(0);
});
