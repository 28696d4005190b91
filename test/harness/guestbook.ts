// The bundled guestbook model as a visitor sees it: its entries, and signing it.
import assert from "node:assert/strict";
import type { AccHome } from "./acc.js";

export interface Entry {
  id: number | undefined;
  text: string;
  /** From guestbook 1.1.0 on; undefined on 1.0.0's page. */
  likes: number | undefined;
}

/** The entries on the instance's page, in order. */
export async function guestbookEntries(acc: AccHome, name: string): Promise<Entry[]> {
  const page = await acc.request(`${name}.localhost`);
  assert.equal(page.status, 200, page.body);
  const item =
    /<li><b>([^<]*)<\/b>: ([^<]*?)(?: <span class="likes">(\d+) likes?<\/span>.*?name="id" value="(\d+)".*?)?<\/li>/g;
  return [...page.body.matchAll(item)].map((m) => ({
    text: `${m[1]}: ${m[2]}`,
    likes: m[3] !== undefined ? Number(m[3]) : undefined,
    id: m[4] !== undefined ? Number(m[4]) : undefined,
  }));
}

/** "author: message" of each entry. */
export async function entries(acc: AccHome, name: string): Promise<string[]> {
  return (await guestbookEntries(acc, name)).map((e) => e.text);
}

export async function sign(
  acc: AccHome,
  name: string,
  author: string,
  message: string,
): Promise<void> {
  const body = new URLSearchParams({ author, message }).toString();
  const answer = await acc.request(`${name}.localhost`, { method: "POST", body });
  assert.equal(answer.status, 303, answer.body);
}
