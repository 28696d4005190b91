import assert from "node:assert/strict";
import { test } from "node:test";
import { instanceOfEvent, takeEvents } from "./events.js";

function event(name: string, payload: string): string {
  const header = `ver:3.0 server:supervisor serial:21 pool:acc-exits poolserial:10 eventname:${name} len:${Buffer.byteLength(payload)}\n`;
  return header + payload;
}

test("listener protocol: events are read whole, a partial one waits for its bytes", () => {
  const exited = event(
    "PROCESS_STATE_EXITED",
    "processname:i-shop groupname:i-shop from_state:RUNNING expected:0 pid:2766",
  );
  const other = event(
    "PROCESS_STATE_EXITED",
    "processname:acc-nginx groupname:acc-nginx from_state:RUNNING expected:0 pid:12",
  );
  const all = Buffer.from(exited + other);
  const cut = exited.length + 30;
  const first = takeEvents(all.subarray(0, cut));
  const [exit] = first.events;
  assert.equal(first.events.length, 1);
  assert.ok(exit);
  assert.equal(exit.name, "PROCESS_STATE_EXITED");
  assert.equal(exit.fields.pid, "2766");
  assert.equal(instanceOfEvent(exit), "shop");
  const second = takeEvents(Buffer.concat([first.rest, all.subarray(cut)]));
  const [service] = second.events;
  assert.equal(second.events.length, 1);
  assert.equal(second.rest.length, 0);
  assert.ok(service);
  // acc's own services are not instances.
  assert.equal(instanceOfEvent(service), undefined);
  assert.throws(() => takeEvents(Buffer.from("ver:3.0 len:x\n")), /bad event header/);
});
