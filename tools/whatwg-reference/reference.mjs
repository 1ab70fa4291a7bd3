// Runs one scenario with undici's WHATWG WebSocket and prints the events it saw as JSON.
// Usage: node reference.mjs '{"url": "...", "sendOnOpen": "hi", "closeAfterMessages": 1,
//                             "closeAt": "start"}'
import { WebSocket } from "undici";

const scenario = JSON.parse(process.argv[2]);
const events = [];
const ws = new WebSocket(scenario.url);
let messages = 0;
const record = (type, extra = {}) => events.push({ type, readyState: ws.readyState, ...extra });

ws.addEventListener("open", () => {
  record("open");
  if (scenario.sendOnOpen !== undefined) ws.send(scenario.sendOnOpen);
});
ws.addEventListener("message", (event) => {
  messages += 1;
  record("message", { data: String(event.data) });
  if (scenario.closeAfterMessages === messages) ws.close(...(scenario.closeArgs ?? []));
});
ws.addEventListener("error", () => record("error"));
ws.addEventListener("close", (event) => {
  record("close", { code: event.code, reason: event.reason, wasClean: event.wasClean });
  console.log(JSON.stringify(events));
  process.exit(0);
});
if (scenario.closeAt === "start") ws.close();
setTimeout(() => {
  console.log(JSON.stringify(events));
  process.exit(2);
}, 10000);
