import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { findKeyLine, isValidModelName, parseManifest, type ModelManifest } from "../core/model.js";
import { showValue } from "../core/validate.js";
import { AccError, hasErrno, isAccError } from "../lib/errors.js";

/** Where a model comes from: acc's own models/ folder, or HOME/models. */
export type ModelSource = "bundled" | "user";

/**
 * One entry of `acc models` (and its --json): a broken model is listed with its error, so one
 * typo hides nothing else. version and description are absent when the manifest is broken.
 */
export interface ModelInfo {
  name: string;
  version?: string;
  description?: string;
  source: ModelSource;
  dir: string;
  /** A user model that replaces the bundled model of the same name. */
  overrides: boolean;
  error?: string;
}

export interface LoadedModel {
  manifest: ModelManifest;
  dir: string;
  source: ModelSource;
  /** sha256 of the folder's content: instances of one hash share one copy of the code. */
  hash: string;
}

export interface ModelRegistry {
  list(): Promise<ModelInfo[]>;
  get(name: string): Promise<LoadedModel>;
}

export interface ModelRegistryOptions {
  /** acc's own models/ folder. */
  bundledDir: string;
  /** HOME/models: the sysadmin's models, which win over bundled ones of the same name. */
  userDir: string;
}

const MANIFEST = "model.toml";
// Installed dependencies are rebuilt from the code, and a .git folder changes on every fetch:
// neither is the model's content, and hashing them would split instances of one version.
const SKIPPED_DIRS = new Set(["node_modules", ".git"]);

/** Folder names in dir, sorted; none when dir does not exist. Hidden entries and files are skipped. */
async function modelFolders(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return [];
    throw error;
  }
  const names: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    // A symlink to a model folder is a fair way to install one.
    const isDir =
      entry.isDirectory() ||
      (entry.isSymbolicLink() && (await isDirectory(path.join(dir, entry.name))));
    if (isDir) names.push(entry.name);
  }
  return names.sort();
}

async function isDirectory(target: string): Promise<boolean> {
  try {
    return (await stat(target)).isDirectory();
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return false;
    throw error;
  }
}

/** Reads and checks one model folder; every problem with the model is an ACC_MODEL error. */
async function loadManifest(dir: string, folderName: string): Promise<ModelManifest> {
  const file = path.join(dir, MANIFEST);
  if (!isValidModelName(folderName)) {
    throw new AccError(
      "ACC_MODEL",
      `${dir}: folder name ${showValue(folderName)} is not a valid model name`,
      {
        hint: "name model folders with a DNS label: a-z, 0-9 and '-'",
      },
    );
  }
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (hasErrno(error, "ENOENT")) {
      throw new AccError("ACC_MODEL", `${dir}: no ${MANIFEST} in the model folder`, {
        cause: error,
      });
    }
    if (hasErrno(error, "EACCES")) {
      throw new AccError("ACC_MODEL", `${file}: permission denied`, { cause: error });
    }
    throw error;
  }
  const manifest = parseManifest(text, file);
  if (manifest.name !== folderName) {
    const line = findKeyLine(text, ["name"]);
    throw new AccError(
      "ACC_MODEL",
      `${file}:${line ?? 1}: name ${showValue(manifest.name)} does not match the folder name ${showValue(folderName)}`,
      { hint: "a model is found by its folder name: make them the same" },
    );
  }
  await checkTemplateSources(dir, file, text, manifest);
  return manifest;
}

/** Template sources must be files inside the model folder, also after following symlinks. */
async function checkTemplateSources(
  dir: string,
  file: string,
  text: string,
  manifest: ModelManifest,
): Promise<void> {
  const root = await realpath(dir);
  for (const [index, template] of manifest.templates.entries()) {
    const where = `${file}:${findKeyLine(text, ["templates", index, "source"]) ?? 1}`;
    let real: string;
    try {
      real = await realpath(path.join(dir, template.source));
    } catch (error) {
      if (hasErrno(error, "ENOENT")) {
        throw new AccError(
          "ACC_MODEL",
          `${where}: template ${showValue(template.source)} does not exist`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    if (!real.startsWith(`${root}${path.sep}`)) {
      throw new AccError(
        "ACC_MODEL",
        `${where}: template ${showValue(template.source)} leads outside the model folder`,
      );
    }
    if (!(await stat(real)).isFile()) {
      throw new AccError(
        "ACC_MODEL",
        `${where}: template ${showValue(template.source)} is not a file`,
      );
    }
  }
}

interface FolderEntry {
  rel: string;
  kind: "file" | "link";
}

async function listFolder(root: string, rel: string, out: FolderEntry[]): Promise<FolderEntry[]> {
  for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) await listFolder(root, child, out);
    } else if (entry.isSymbolicLink()) {
      out.push({ rel: child, kind: "link" });
    } else if (entry.isFile()) {
      out.push({ rel: child, kind: "file" });
    }
  }
  return out;
}

async function hashFile(hash: Hash, file: string): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

/**
 * A stable sha256 of a model folder: sorted relative paths, each with its kind, executable
 * bit and content (a symlink by its target, not followed). Folder order, times and owners
 * do not change it, so two copies of one model version hash the same.
 */
export async function hashModelFolder(dir: string): Promise<string> {
  const entries = await listFolder(dir, "", []);
  // Plain code-unit order, not localeCompare: the hash must not depend on the machine's locale.
  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const hash = createHash("sha256");
  for (const entry of entries) {
    const full = path.join(dir, entry.rel);
    if (entry.kind === "link") {
      hash.update(`link\0${entry.rel}\0${await readlink(full)}\0`);
    } else {
      const info = await lstat(full);
      const exec = (info.mode & 0o111) !== 0 ? "x" : "-";
      hash.update(`file\0${entry.rel}\0${exec}\0${info.size}\0`);
      await hashFile(hash, full);
    }
  }
  return hash.digest("hex");
}

export function createModelRegistry(options: ModelRegistryOptions): ModelRegistry {
  const roots: [ModelSource, string][] = [
    ["bundled", options.bundledDir],
    ["user", options.userDir],
  ];

  async function describeModel(
    source: ModelSource,
    root: string,
    name: string,
  ): Promise<ModelInfo> {
    const dir = path.join(root, name);
    try {
      const manifest = await loadManifest(dir, name);
      const info: ModelInfo = { name, version: manifest.version, source, dir, overrides: false };
      if (manifest.description !== undefined) info.description = manifest.description;
      return info;
    } catch (error) {
      if (!isAccError(error, "ACC_MODEL")) throw error;
      return { name, source, dir, overrides: false, error: error.message };
    }
  }

  async function list(): Promise<ModelInfo[]> {
    const byName = new Map<string, ModelInfo>();
    // Bundled first, so that a user model of the same name replaces it.
    for (const [source, root] of roots) {
      for (const name of await modelFolders(root)) {
        const info = await describeModel(source, root, name);
        info.overrides = byName.has(name);
        byName.set(name, info);
      }
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async function get(name: string): Promise<LoadedModel> {
    if (!isValidModelName(name)) {
      throw new AccError("ACC_INVALID", `invalid model name ${showValue(name)}`, {
        hint: "acc models lists them",
      });
    }
    for (const [source, root] of [...roots].reverse()) {
      const dir = path.join(root, name);
      if (!(await isDirectory(dir))) continue;
      const manifest = await loadManifest(dir, name);
      return { manifest, dir, source, hash: await hashModelFolder(dir) };
    }
    throw new AccError("ACC_NOT_FOUND", `no model named ${showValue(name)}`, {
      hint: "acc models lists them",
    });
  }

  return { list, get };
}
