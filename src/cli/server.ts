import type { Command } from "./command.js";

export const serverCommand: Command = {
  name: "server",
  summary:
    "Run acc server: the waker (starts a stopped instance for the request nginx hands it, on a unix socket only nginx and root can open) and the idle monitor; 127.0.0.1:<server_port> answers its health only. acc boot runs it under supervisord.",
  usage: "",
  help: [],
  options: {},
  positionals: { min: 0, max: 0, names: "" },
  json: false,
  async run(_args, cli) {
    const ctx = await cli.open();
    const { runServer } = await import("../server/main.js");
    await runServer(ctx);
    return { data: null, text: "" };
  },
};
