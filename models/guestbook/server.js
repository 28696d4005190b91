// Guestbook: GET / lists the entries, POST / (form: author, message) adds one, POST /like (form:
// id) likes one. /healthz checks the database.
import http from "node:http";
import pg from "pg";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
const instance = process.env.ACC_INSTANCE ?? "guestbook";
const title = `${instance} ${process.env.TITLE || "guestbook"}`;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function page(res) {
  const { rows } = await pool.query("SELECT id, author, message, likes FROM entries ORDER BY id");
  const items = rows
    .map(
      (r) =>
        `<li><b>${escapeHtml(r.author)}</b>: ${escapeHtml(r.message)} <span class="likes">${r.likes} like${r.likes === 1 ? "" : "s"}</span> <form method="post" action="/like" style="display:inline"><input type="hidden" name="id" value="${r.id}"><button>Like</button></form></li>`,
    )
    .join("\n");
  res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>
<ul>
${items}
</ul>
<form method="post"><input name="author" placeholder="name"> <input name="message" placeholder="message"> <button>Sign</button></form>
</body></html>
`);
}

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
      if (body.length > limit) reject(new Error("body too large"));
    });
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/healthz") {
      await pool.query("SELECT 1");
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    if (url.pathname === "/like" && req.method === "POST") {
      const id = Number(new URLSearchParams(await readBody(req)).get("id"));
      if (!Number.isSafeInteger(id)) {
        res.writeHead(400, { "content-type": "text/plain" }).end("id is required\n");
        return;
      }
      await pool.query("UPDATE entries SET likes = likes + 1 WHERE id = $1", [id]);
      res.writeHead(303, { location: "/" }).end();
      return;
    }
    if (url.pathname !== "/") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    if (req.method === "POST") {
      const form = new URLSearchParams(await readBody(req));
      const author = (form.get("author") ?? "").trim().slice(0, 100);
      const message = (form.get("message") ?? "").trim().slice(0, 1000);
      if (!author || !message) {
        res
          .writeHead(400, { "content-type": "text/plain" })
          .end("author and message are required\n");
        return;
      }
      await pool.query("INSERT INTO entries (author, message) VALUES ($1, $2)", [author, message]);
      res.writeHead(303, { location: "/" }).end();
      return;
    }
    await page(res);
  } catch (error) {
    console.error(error);
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end("internal error\n");
  }
});

process.on("SIGTERM", () => server.close(() => pool.end().then(() => process.exit(0))));
// Socket activation (model.toml: socket_activation = true): the listening socket is on fd 3.
const activated =
  process.env.LISTEN_FDS === "1" &&
  (process.env.LISTEN_PID === undefined || Number(process.env.LISTEN_PID) === process.pid);
const where = activated
  ? { fd: 3 }
  : { port: Number(process.env.PORT), host: process.env.HOST ?? "127.0.0.1" };
server.listen(where, () => console.log(`guestbook: ${instance} listening on ${process.env.PORT}`));
