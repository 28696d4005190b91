import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isValidInstanceName, isValidModelName } from "../../core/validate.js";
import { AccError, httpStatusFor, isAccError } from "../../lib/errors.js";
import type { EventJson } from "../../operations/events.js";
import type { ModelListed, ModelShown } from "../../operations/models.js";
import type { Caller, Download, Operation, OperationCall } from "../../operations/types.js";
import type { BackupInfo } from "../../services/backups.js";
import type { AccContext } from "../../services/context.js";
import type { ListedInstance, ShownInstance } from "../../services/instance-view.js";
import type { ModelInfo } from "../../services/models.js";
import { refreshConfig } from "../../services/open.js";
import type { StatusReport } from "../../services/system.js";
import type { UpgradeReport } from "../../services/upgrades.js";
import { checkAllowed, invokeOperation, sendDownload, sendStream } from "../api.js";
import { sourceOf } from "../auth.js";
import { CSS, JS } from "./assets.js";
import { CSRF_FIELD, csrfMatches } from "./csrf.js";
import { layout, type Flash, type Viewer } from "./layout.js";
import {
  backupsPage,
  createPage,
  endUserPage,
  eventsPage,
  instanceHref,
  instancePage,
  instancesPage,
  messagePage,
  modelsPage,
  signInPage,
  statusPage,
  type InstancesQuery,
} from "./pages.js";
import { sessionCookie, sessionIdOf, type Session, type SessionStore } from "./sessions.js";
import { rollbackPage, upgradeFlash, upgradePage } from "./upgrade-pages.js";

export interface UiDeps {
  ctx: AccContext;
  operations: readonly Operation[];
  sessions: SessionStore;
  /** A token's check (services/tokens.ts through server/auth.ts, failures rate-limited). */
  verify(secret: string, source: string): Promise<Caller>;
}

/** Instances per page of the table. */
const PAGE_SIZE = 50;
/** The pre-session token of the sign-in form (a double-submit cookie: no session yet). */
const SIGNIN_COOKIE = "acc_signin";

type TokenCaller = Extract<Caller, { kind: "token" }>;
type Form = Record<string, string>;

// What acc's pages may load and do: their own files only, nothing inline, never in a frame.
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
};

const ADMIN_ACTIONS: Readonly<Record<string, string>> = {
  start: "instance.start",
  stop: "instance.stop",
  restart: "instance.restart",
  suspend: "instance.suspend",
  resume: "instance.resume",
  backup: "instance.backup",
  restore: "instance.restore",
  destroy: "instance.destroy",
  rollback: "instance.rollback",
};
/** The end-user page's actions: wake, restart, back up (downloads are GETs). */
const END_USER_ACTIONS = new Set(["start", "restart", "backup"]);

const DONE: Readonly<Record<string, string>> = {
  start: "started",
  stop: "stopped",
  restart: "restarted",
  suspend: "suspended",
  resume: "resumed",
  backup: "backed up",
  restore: "restored",
};

function isTls(request: FastifyRequest): boolean {
  return request.headers["x-forwarded-proto"] === "https";
}

function cookieValue(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}

/** An AccError as a flash: its message and its hint. */
function errorFlash(error: AccError): Flash {
  return {
    kind: "error",
    text: `${error.message}${error.hint !== undefined ? ` (${error.hint})` : ""}`,
  };
}

function viewerOf(session: Session): Viewer {
  return { tokenName: session.caller.name, scope: session.caller.scope, csrf: session.csrf };
}

/** The page of a refusal or an error: the message (and hint) only, with the status. */
function sendPage(
  reply: FastifyReply,
  status: number,
  options: Parameters<typeof layout>[0],
): FastifyReply {
  return reply.code(status).type("text/html; charset=utf-8").send(layout(options));
}

/**
 * The admin UI and the end-user page under /ui: server-rendered pages over the operations.
 * Every change goes through invokeOperation with the session's token as the caller, so its
 * scope is checked and the change is an event naming the token, as through the API.
 */
export function registerUi(app: FastifyInstance, deps: UiDeps): void {
  const { ctx, sessions } = deps;
  const byId = new Map(deps.operations.map((op) => [op.id, op]));
  const operation = (id: string): Operation => {
    const op = byId.get(id);
    if (!op) throw new Error(`bug: no operation ${id}`);
    return op;
  };
  const callFor = (caller: Caller, signal?: AbortSignal): OperationCall => ({
    ctx,
    caller,
    signal: signal ?? new AbortController().signal,
    progress: { step: () => undefined },
  });
  const run = async <T>(session: Session, id: string, input: object): Promise<T> =>
    (await invokeOperation(ctx, operation(id), callFor(session.caller), input)) as T;

  app.get("/", (_request, reply) => reply.redirect("/ui", 302));

  void app.register(
    (ui, _options, registered) => {
      ui.addContentTypeParser(
        "application/x-www-form-urlencoded",
        { parseAs: "string", bodyLimit: 256 * 1024 },
        (_request, body, done) => {
          done(null, Object.fromEntries(new URLSearchParams(body as string)));
        },
      );
      ui.addHook("onSend", async (request, reply, payload) => {
        for (const [key, value] of Object.entries(SECURITY_HEADERS)) reply.header(key, value);
        if (!request.url.startsWith("/ui/assets/")) reply.header("cache-control", "no-store");
        return payload;
      });

      ui.setErrorHandler((error, request, reply) => {
        const accError = isAccError(error)
          ? error
          : (error as { statusCode?: number }).statusCode !== undefined &&
              ((error as { statusCode?: number }).statusCode ?? 500) < 500
            ? new AccError("ACC_INVALID", (error as Error).message)
            : undefined;
        if (!accError)
          process.stderr.write(
            `ui: internal error (this is a bug): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
          );
        const status = accError ? httpStatusFor(accError.code) : 500;
        const session = sessions.get(sessionIdOf(request.headers.cookie));
        return sendPage(reply, status, {
          title: status === 403 ? "Not allowed" : status === 404 ? "Not found" : "Error",
          ...(session ? { viewer: viewerOf(session) } : {}),
          flash: {
            kind: "error",
            text: accError
              ? `${accError.message}${accError.hint !== undefined ? ` (${accError.hint})` : ""}`
              : "internal error (this is a bug); acc server's log has the details",
          },
          body: messagePage("", { href: "/ui", label: "Back" }),
        });
      });

      ui.setNotFoundHandler((request, reply) => {
        const session = sessions.get(sessionIdOf(request.headers.cookie));
        return sendPage(reply, 404, {
          title: "Not found",
          ...(session ? { viewer: viewerOf(session) } : {}),
          body: messagePage("There is no such page.", { href: "/ui", label: "Back" }),
        });
      });

      ui.get("/assets/ui.css", (_request, reply) =>
        reply.type("text/css; charset=utf-8").header("cache-control", "max-age=300").send(CSS),
      );
      ui.get("/assets/ui.js", (_request, reply) =>
        reply
          .type("text/javascript; charset=utf-8")
          .header("cache-control", "max-age=300")
          .send(JS),
      );

      /** Sign-in page; its form's CSRF token is also a cookie of its own, compared on POST. */
      const showSignIn = (
        reply: FastifyReply,
        request: FastifyRequest,
        status: number,
        flash?: Flash,
      ) => {
        const token = randomBytes(32).toString("base64url");
        reply.header(
          "set-cookie",
          `${SIGNIN_COOKIE}=${token}; Path=/ui/signin; HttpOnly; SameSite=Strict; Max-Age=3600${isTls(request) ? "; Secure" : ""}`,
        );
        return sendPage(reply, status, {
          title: "Sign in",
          ...(flash ? { flash } : {}),
          body: signInPage(token),
        });
      };

      /**
       * The session of a request, its token checked again (a revoked or expired token ends it
       * here), or undefined once the answer (sign-in page, refusal) is sent.
       */
      const sessionOf = async (
        request: FastifyRequest,
        reply: FastifyReply,
      ): Promise<Session | undefined> => {
        const session = sessions.get(sessionIdOf(request.headers.cookie));
        if (!session) {
          if (request.method === "GET") {
            await reply.redirect("/ui/signin", 303);
          } else {
            sendPage(reply, 403, {
              title: "Not allowed",
              flash: { kind: "error", text: "You are not signed in (or your session ended)." },
              body: messagePage("Nothing was changed.", { href: "/ui/signin", label: "Sign in" }),
            });
          }
          return undefined;
        }
        try {
          const caller = (await deps.verify(session.secret, sourceOf(request))) as TokenCaller;
          session.caller = caller;
          // acc.toml edited since: read again, as the API does for each call.
          await refreshConfig(ctx, process.env);
        } catch (error) {
          if (!isAccError(error, "ACC_UNAUTHORIZED")) throw error;
          sessions.delete(session.id);
          reply.header("set-cookie", sessionCookie(undefined, isTls(request)));
          showSignIn(reply, request, 401, {
            kind: "error",
            text: `Your session ended: ${error.message}.`,
          });
          return undefined;
        }
        return session;
      };

      /** A POST's form with its CSRF token checked first: a refusal is 403 and changes nothing. */
      const formOf = (
        request: FastifyRequest,
        reply: FastifyReply,
        session: Session,
      ): Form | undefined => {
        const form = (request.body ?? {}) as Form;
        if (typeof form !== "object" || !csrfMatches(session.csrf, form[CSRF_FIELD])) {
          sendPage(reply, 403, {
            title: "Refused",
            viewer: viewerOf(session),
            flash: {
              kind: "error",
              text: "This form's security token is missing or wrong (CSRF protection): nothing was changed.",
            },
            body: messagePage("Reload the page and try again.", { href: "/ui", label: "Back" }),
          });
          return undefined;
        }
        return form;
      };

      /** Pages other than its own instance's are refused to an instance token, naming nothing. */
      const adminOnly = (reply: FastifyReply, session: Session): boolean => {
        if (session.caller.scope.kind !== "instance") return true;
        sendPage(reply, 403, {
          title: "Not allowed",
          viewer: viewerOf(session),
          body: messagePage("This token reaches only its own instance's page.", {
            href: instanceHref(session.caller.scope.name),
            label: "Your instance",
          }),
        });
        return false;
      };

      /** An instance name from the path: another instance than an instance token's is not found. */
      const instanceParam = (
        request: FastifyRequest,
        reply: FastifyReply,
        session: Session,
      ): string | undefined => {
        const name = (request.params as { name: string }).name;
        const scope = session.caller.scope;
        if (!isValidInstanceName(name) || (scope.kind === "instance" && scope.name !== name)) {
          sendPage(reply, 404, {
            title: "Not found",
            viewer: viewerOf(session),
            body: messagePage("There is no such page.", { href: "/ui", label: "Back" }),
          });
          return undefined;
        }
        return name;
      };

      const takeFlash = (session: Session): Flash | undefined => {
        const flash = session.flash;
        delete session.flash;
        return flash;
      };

      ui.get("/", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const scope = session.caller.scope;
        return reply.redirect(
          scope.kind === "instance" ? instanceHref(scope.name) : "/ui/instances",
          303,
        );
      });

      ui.get("/signin", (request, reply) => showSignIn(reply, request, 200));

      ui.post("/signin", async (request, reply) => {
        const form = (request.body ?? {}) as Form;
        const expected = cookieValue(request, SIGNIN_COOKIE) ?? "";
        if (!csrfMatches(expected, form[CSRF_FIELD])) {
          return showSignIn(reply, request, 403, {
            kind: "error",
            text: "This form's security token is missing or wrong (CSRF protection): try again.",
          });
        }
        const secret = (form.token ?? "").trim();
        let caller: TokenCaller;
        try {
          caller = (await deps.verify(secret, sourceOf(request))) as TokenCaller;
        } catch (error) {
          if (!isAccError(error, "ACC_UNAUTHORIZED")) throw error;
          return showSignIn(reply, request, 401, {
            kind: "error",
            text: "That token was refused.",
          });
        }
        const session = sessions.create(secret, caller);
        reply.header("set-cookie", [
          sessionCookie(session, isTls(request)),
          `${SIGNIN_COOKIE}=; Path=/ui/signin; Max-Age=0`,
        ]);
        return reply.redirect("/ui", 303);
      });

      ui.post("/signout", async (request, reply) => {
        const session = sessions.get(sessionIdOf(request.headers.cookie));
        if (session && !formOf(request, reply, session)) return reply;
        sessions.delete(session?.id);
        reply.header("set-cookie", sessionCookie(undefined, isTls(request)));
        return showSignIn(reply, request, 200, { kind: "ok", text: "Signed out." });
      });

      ui.get("/instances", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session || !adminOnly(reply, session)) return reply;
        const query = instancesQuery(request.query as Record<string, string | undefined>);
        const { rows, hasNext } = await listPage(session, query);
        const models = (await run<ModelInfo[]>(session, "model.list", {})).map((m) => m.name);
        const viewer = viewerOf(session);
        const flash = takeFlash(session);
        return sendPage(reply, 200, {
          title: "Instances",
          viewer,
          current: "/ui/instances",
          ...(flash ? { flash } : {}),
          body: instancesPage({ rows, query, hasNext, models, viewer }),
        });
      });

      /** One page of the table, searched, filtered and sorted by instance.list itself. */
      async function listPage(
        session: Session,
        query: InstancesQuery,
      ): Promise<{ rows: ListedInstance[]; hasNext: boolean }> {
        // One more than a page: whether there is a next one.
        const rows = await run<ListedInstance[]>(session, "instance.list", {
          ...(query.q !== "" ? { q: query.q } : {}),
          ...(query.state !== "" ? { state: query.state } : {}),
          ...(query.model !== "" ? { model: query.model } : {}),
          sort: query.sort,
          limit: PAGE_SIZE + 1,
          offset: (query.page - 1) * PAGE_SIZE,
        });
        return { rows: rows.slice(0, PAGE_SIZE), hasNext: rows.length > PAGE_SIZE };
      }

      ui.get("/instances/:name", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const name = instanceParam(request, reply, session);
        if (name === undefined) return reply;
        return showInstance(request, reply, session, name, false);
      });

      async function showInstance(
        _request: FastifyRequest,
        reply: FastifyReply,
        session: Session,
        name: string,
        secrets: boolean,
      ): Promise<FastifyReply> {
        const view = await run<ShownInstance>(session, "instance.show", {
          name,
          ...(secrets ? { secrets: true } : {}),
        });
        const backups = await run<BackupInfo[]>(session, "backup.list", { name });
        const viewer = viewerOf(session);
        const flash = takeFlash(session);
        const shared = {
          title: view.name,
          viewer,
          current: instanceHref(name),
          ...(flash ? { flash } : {}),
        };
        if (session.caller.scope.kind === "instance")
          return sendPage(reply, 200, { ...shared, body: endUserPage({ view, backups, viewer }) });
        const events = await run<EventJson[]>(session, "event.list", { name, lines: 20 });
        let log: { text: string; size: number } | undefined;
        try {
          log = await run<{ text: string; size: number }>(session, "instance.logs", {
            name,
            lines: 100,
          });
        } catch (error) {
          if (!isAccError(error, "ACC_FORBIDDEN")) throw error;
        }
        return sendPage(reply, 200, {
          ...shared,
          body: instancePage({ view, events, backups, log, viewer, revealed: secrets }),
        });
      }

      ui.post("/instances/:name/reveal", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session || !formOf(request, reply, session)) return reply;
        const name = instanceParam(request, reply, session);
        if (name === undefined || !adminOnly(reply, session)) return reply;
        return showInstance(request, reply, session, name, true);
      });

      ui.post("/instances/:name/:action", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const form = formOf(request, reply, session);
        if (!form) return reply;
        const name = instanceParam(request, reply, session);
        if (name === undefined) return reply;
        const action = (request.params as { action: string }).action;
        const opId = Object.hasOwn(ADMIN_ACTIONS, action) ? ADMIN_ACTIONS[action] : undefined;
        if (
          opId === undefined ||
          (session.caller.scope.kind === "instance" && !END_USER_ACTIONS.has(action))
        ) {
          return sendPage(reply, 404, {
            title: "Not found",
            viewer: viewerOf(session),
            body: messagePage("There is no such action.", {
              href: instanceHref(name),
              label: "Back",
            }),
          });
        }
        if (action === "destroy" && form.confirm !== name) {
          session.flash = {
            kind: "error",
            text: `Not destroyed: type the instance's name, ${name}, to confirm.`,
          };
          return reply.redirect(instanceHref(name), 303);
        }
        const input =
          action === "restore"
            ? { name, backup: form.backup ?? "" }
            : action === "destroy"
              ? { name, backup: form.backup === "1" }
              : { name };
        try {
          const output = await run<{
            backup?: string | null;
            rolled_back?: { from: string; to: string; backup: string };
          }>(session, opId, input);
          if (output.rolled_back !== undefined) {
            const back = output.rolled_back;
            session.flash = {
              kind: "ok",
              text: `${name} rolled back from ${back.from} to ${back.to}; what it had before the rollback is in the backup ${back.backup}.`,
            };
            return reply.redirect(instanceHref(name), 303);
          }
          if (action === "destroy") {
            session.flash = {
              kind: "ok",
              text: `${name} destroyed${typeof output.backup === "string" ? `; its final backup is ${output.backup}` : ""}.`,
            };
            return reply.redirect("/ui/instances", 303);
          }
          session.flash = { kind: "ok", text: `${name} ${DONE[action] ?? action}.` };
        } catch (error) {
          if (!isAccError(error)) throw error;
          session.flash = errorFlash(error);
        }
        return reply.redirect(instanceHref(name), 303);
      });

      /**
       * Upgrades and rollbacks are an admin's: an instance token's own instance has no such
       * page, as its other admin actions (404, like another instance's).
       */
      const noEndUser = (reply: FastifyReply, session: Session, name: string): boolean => {
        if (session.caller.scope.kind !== "instance") return true;
        sendPage(reply, 404, {
          title: "Not found",
          viewer: viewerOf(session),
          body: messagePage("There is no such action.", {
            href: instanceHref(name),
            label: "Back",
          }),
        });
        return false;
      };

      /**
       * Whether the model is still at the version its dry run showed: an upgrade confirmed on a
       * page goes to the version that page showed, never to one copied in since.
       */
      const sameTarget = async (session: Session, model: string, to: string | undefined) =>
        (await run<ModelShown>(session, "model.show", { name: model })).version === to;

      // The dry run first (changes nothing), then its form posts the upgrade itself.
      ui.get("/instances/:name/upgrade", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const name = instanceParam(request, reply, session);
        if (name === undefined || !noEndUser(reply, session, name)) return reply;
        const report = await run<UpgradeReport>(session, "instance.upgrade", {
          names: [name],
          dry_run: true,
        });
        const viewer = viewerOf(session);
        const flash = takeFlash(session);
        return sendPage(reply, 200, {
          title: `Upgrade ${name}`,
          viewer,
          current: instanceHref(name),
          ...(flash ? { flash } : {}),
          body: upgradePage({
            report,
            viewer,
            action: instanceHref(name, "/upgrade"),
            what: name,
            batch: false,
            back: { href: instanceHref(name), label: `Back to ${name}` },
          }),
        });
      });

      ui.post("/instances/:name/upgrade", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const form = formOf(request, reply, session);
        if (!form) return reply;
        const name = instanceParam(request, reply, session);
        if (name === undefined || !noEndUser(reply, session, name)) return reply;
        try {
          const view = await run<ShownInstance>(session, "instance.show", { name });
          if (!(await sameTarget(session, view.model, form.to))) {
            session.flash = {
              kind: "error",
              text: `Not upgraded: ${view.model} changed since this dry run; here is the new one.`,
            };
            return reply.redirect(instanceHref(name, "/upgrade"), 303);
          }
          const report = await run<UpgradeReport>(session, "instance.upgrade", {
            names: [name],
            verify: form.verify === "1",
          });
          session.flash = upgradeFlash(report);
        } catch (error) {
          if (!isAccError(error)) throw error;
          session.flash = errorFlash(error);
        }
        return reply.redirect(instanceHref(name), 303);
      });

      // The rollback's confirmation; its form posts to the action /instances/:name/rollback.
      ui.get("/instances/:name/rollback", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const name = instanceParam(request, reply, session);
        if (name === undefined || !noEndUser(reply, session, name)) return reply;
        const view = await run<ShownInstance>(session, "instance.show", { name });
        const viewer = viewerOf(session);
        return sendPage(reply, 200, {
          title: `Roll back ${name}`,
          viewer,
          current: instanceHref(name),
          body: rollbackPage({ name, model: view.model, version: view.model_version, viewer }),
        });
      });

      ui.get("/instances/:name/logs/stream", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const name = instanceParam(request, reply, session);
        if (name === undefined) return reply;
        const from = Number((request.query as { from?: string }).from ?? "");
        const input = {
          name,
          follow: true,
          ...(Number.isSafeInteger(from) && from >= 0 ? { from } : {}),
        };
        const op = operation("instance.logs");
        checkAllowed(session.caller, op, input);
        const abort = new AbortController();
        await sendStream(request, reply, op, callFor(session.caller, abort.signal), input, abort);
        return reply;
      });

      ui.get("/instances/:name/backups/:backup/download", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const name = instanceParam(request, reply, session);
        if (name === undefined) return reply;
        const backup = (request.params as { backup: string }).backup;
        const op = operation("backup.download");
        const download = await run<Download>(session, op.id, { name, backup });
        return sendDownload(
          reply,
          op.download?.contentType ?? "application/octet-stream",
          download,
        );
      });

      ui.get("/create", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session || !adminOnly(reply, session)) return reply;
        return showCreate(reply, session, (request.query as { model?: string }).model, 200);
      });

      async function showCreate(
        reply: FastifyReply,
        session: Session,
        modelName: string | undefined,
        status: number,
        flash?: Flash,
      ): Promise<FastifyReply> {
        const models = await run<ModelInfo[]>(session, "model.list", {});
        const wanted = modelName ?? models.find((m) => m.error === undefined)?.name;
        const model =
          wanted === undefined || wanted === ""
            ? undefined
            : await run<ModelShown>(session, "model.show", { name: wanted });
        return sendPage(reply, status, {
          title: "Create an instance",
          viewer: viewerOf(session),
          current: "/ui/create",
          ...(flash ? { flash } : {}),
          body: createPage({ models, model, viewer: viewerOf(session) }),
        });
      }

      ui.post("/create", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const form = formOf(request, reply, session);
        if (!form || !adminOnly(reply, session)) return reply;
        const input = createInput(form);
        let created: ShownInstance & { generated?: Record<string, string> };
        try {
          created = await run(session, "instance.create", input);
        } catch (error) {
          if (!isAccError(error)) throw error;
          return showCreate(reply, session, input.model, httpStatusFor(error.code), {
            kind: "error",
            text: `${error.message}${error.hint !== undefined ? ` (${error.hint})` : ""}`,
          });
        }
        const generated = Object.entries(created.generated ?? {});
        return sendPage(reply, 200, {
          title: `${created.name} created`,
          viewer: viewerOf(session),
          flash: {
            kind: "ok",
            text:
              generated.length > 0
                ? `${created.name} created (${created.state}). Its generated secrets, shown this once:`
                : `${created.name} created (${created.state}).`,
            ...(generated.length > 0
              ? { detail: generated.map(([k, v]) => `${k}=${v}`).join("\n") }
              : {}),
          },
          body: messagePage(`Its URL: ${created.url}`, {
            href: instanceHref(created.name),
            label: `Open ${created.name}'s page`,
          }),
        });
      });

      ui.get("/models", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session || !adminOnly(reply, session)) return reply;
        const models = await run<ModelListed[]>(session, "model.list", {});
        return sendPage(reply, 200, {
          title: "Models",
          viewer: viewerOf(session),
          current: "/ui/models",
          body: modelsPage(models, viewerOf(session)),
        });
      });

      /** A model name from the path, or undefined once the 404 is sent. */
      const modelParam = (
        request: FastifyRequest,
        reply: FastifyReply,
        session: Session,
      ): string | undefined => {
        const model = (request.params as { model: string }).model;
        if (isValidModelName(model)) return model;
        sendPage(reply, 404, {
          title: "Not found",
          viewer: viewerOf(session),
          body: messagePage("There is no such model.", { href: "/ui/models", label: "Back" }),
        });
        return undefined;
      };
      const modelUpgradeHref = (model: string) => `/ui/models/${encodeURIComponent(model)}/upgrade`;

      ui.get("/models/:model/upgrade", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session || !adminOnly(reply, session)) return reply;
        const model = modelParam(request, reply, session);
        if (model === undefined) return reply;
        const report = await run<UpgradeReport>(session, "instance.upgrade", {
          model,
          dry_run: true,
        });
        const viewer = viewerOf(session);
        const flash = takeFlash(session);
        return sendPage(reply, 200, {
          title: `Upgrade all instances of ${model}`,
          viewer,
          current: "/ui/models",
          ...(flash ? { flash } : {}),
          body: upgradePage({
            report,
            viewer,
            action: modelUpgradeHref(model),
            what: `the instances of ${model}`,
            batch: true,
            back: { href: "/ui/models", label: "Back to the models" },
          }),
        });
      });

      ui.post("/models/:model/upgrade", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session) return reply;
        const form = formOf(request, reply, session);
        if (!form || !adminOnly(reply, session)) return reply;
        const model = modelParam(request, reply, session);
        if (model === undefined) return reply;
        try {
          const rollout = rolloutInput(form);
          if (!(await sameTarget(session, model, form.to))) {
            session.flash = {
              kind: "error",
              text: `Not upgraded: ${model} changed since this dry run; here is the new one.`,
            };
            return reply.redirect(modelUpgradeHref(model), 303);
          }
          const report = await run<UpgradeReport>(session, "instance.upgrade", {
            model,
            ...rollout,
          });
          session.flash = upgradeFlash(report);
        } catch (error) {
          if (!isAccError(error)) throw error;
          session.flash = errorFlash(error);
          return reply.redirect(modelUpgradeHref(model), 303);
        }
        return reply.redirect(`/ui/instances?model=${encodeURIComponent(model)}`, 303);
      });

      ui.get("/backups", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session || !adminOnly(reply, session)) return reply;
        const backups = await run<BackupInfo[]>(session, "backup.list", {});
        return sendPage(reply, 200, {
          title: "Backups",
          viewer: viewerOf(session),
          current: "/ui/backups",
          body: backupsPage(backups, session.caller.scope.kind === "admin"),
        });
      });

      ui.get("/events", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session || !adminOnly(reply, session)) return reply;
        const events = await run<EventJson[]>(session, "event.list", { lines: 100 });
        return sendPage(reply, 200, {
          title: "Events",
          viewer: viewerOf(session),
          current: "/ui/events",
          body: eventsPage(events),
        });
      });

      ui.get("/status", async (request, reply) => {
        const session = await sessionOf(request, reply);
        if (!session || !adminOnly(reply, session)) return reply;
        const report = await run<StatusReport>(session, "system.status", {});
        return sendPage(reply, 200, {
          title: "System status",
          viewer: viewerOf(session),
          current: "/ui/status",
          body: statusPage(report),
        });
      });
      registered();
    },
    { prefix: "/ui" },
  );
}

export function instancesQuery(raw: Record<string, string | undefined>): InstancesQuery {
  const text = (value: string | undefined) =>
    typeof value === "string" ? value.slice(0, 200) : "";
  const sort = raw.sort === "activity" || raw.sort === "memory" ? raw.sort : "name";
  const page = Number(raw.page ?? "1");
  return {
    q: text(raw.q).trim(),
    state: text(raw.state),
    model: text(raw.model),
    sort,
    page: Number.isSafeInteger(page) && page >= 1 && page <= 1_000_000 ? page : 1,
  };
}

/** The create form as instance.create's input: empty fields are left to the defaults. */
export function createInput(form: Form): {
  model: string;
  name?: string;
  hosts?: string[];
  params?: string[];
  idle_timeout?: string;
  start: boolean;
} {
  const params = Object.entries(form)
    .filter(([key, value]) => key.startsWith("param.") && value !== "")
    .map(([key, value]) => `${key.slice("param.".length)}=${value}`);
  const hosts = (form.hosts ?? "").split(/[\s,]+/).filter((h) => h !== "");
  const name = (form.name ?? "").trim();
  const idle = (form.idle_timeout ?? "").trim();
  return {
    model: form.model ?? "",
    ...(name !== "" ? { name } : {}),
    ...(hosts.length > 0 ? { hosts } : {}),
    ...(params.length > 0 ? { params } : {}),
    ...(idle !== "" ? { idle_timeout: idle } : {}),
    start: form.start === "1",
  };
}

/** The whole-model upgrade form's rollout fields as instance.upgrade's input. */
export function rolloutInput(form: Form): { batch: number; max_failures: number; verify: boolean } {
  const count = (key: "batch" | "max_failures", label: string): number => {
    const text = (form[key] ?? "").trim();
    if (text === "") return 1;
    if (!/^\d{1,6}$/.test(text)) {
      throw new AccError("ACC_INVALID", `Not upgraded: the ${label} must be a whole number`);
    }
    return Number(text);
  };
  return {
    batch: count("batch", "batch size"),
    max_failures: count("max_failures", "max failures"),
    verify: form.verify === "1",
  };
}
