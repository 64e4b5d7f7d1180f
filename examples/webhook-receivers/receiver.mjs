// A minimal Race Platform webhook receiver: verifies both signatures, deduplicates, answers at once.
//
//   WEBHOOK_SECRET=whsec_... PORT=8787 node receiver.mjs
//
// Node.js 18+, no dependencies. Each accepted delivery is answered 204 before it is processed, and
// one JSON line per request goes to stdout.
import crypto from "node:crypto";
import http from "node:http";

const SECRET = process.env.WEBHOOK_SECRET; // whsec_... from POST /webhooks (or rotate-secret)
const TOLERANCE_S = 300; // refuse signatures more than 5 minutes away: a captured request cannot be replayed
const MAX_BODY_BYTES = 1024 * 1024;
const SEEN_MAX = 100_000; // webhook-ids remembered (longer than the 35-minute retry schedule)
if (!SECRET?.startsWith("whsec_")) throw new Error("WEBHOOK_SECRET (whsec_...) is required");

const same = (a, b) => {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};

// Standard Webhooks: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>, any of them.
export function standardOk(secret, headers, body, nowS = Date.now() / 1000) {
  const id = headers["webhook-id"] ?? "", ts = headers["webhook-timestamp"] ?? "";
  if (!/^[0-9]+$/.test(ts) || Math.abs(nowS - Number(ts)) > TOLERANCE_S) return false;
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const expected = crypto.createHmac("sha256", key).update(`${id}.${ts}.`).update(body).digest("base64");
  return (headers["webhook-signature"] ?? "").split(" ").some((s) => same(s, `v1,${expected}`));
}

// X-Race-Signature: sha256=<hex HMAC-SHA256(whole secret string, body)>, any of them (body only).
export function legacyOk(secret, headers, body) {
  const expected = "sha256=" + crypto.createHmac("sha256", secret).update(body).digest("hex");
  return (headers["x-race-signature"] ?? "").split(",").some((s) => same(s.trim(), expected));
}

const seen = new Set(); // insertion-ordered: the oldest id is forgotten first
function firstTime(id) {
  if (seen.has(id)) return false;
  seen.add(id);
  if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value);
  return true;
}

const log = (fields) => console.log(JSON.stringify(fields));

function processEvent(event) {
  // Your slow work goes here (it runs after the answer was sent).
  log({ processed: event.type, eventId: event.eventId, dataId: event.data?.id });
}

const server = http.createServer((req, res) => {
  const answer = (status) => res.writeHead(status, { "Content-Length": "0" }).end();
  if (req.method !== "POST") return answer(405);
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) { answer(413); req.destroy(); } else chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > MAX_BODY_BYTES) return;
    const body = Buffer.concat(chunks); // the raw bytes: verify before parsing
    const id = req.headers["webhook-id"] ?? "";
    if (!(standardOk(SECRET, req.headers, body) && legacyOk(SECRET, req.headers, body))) {
      log({ refused: id });
      return answer(401);
    }
    if (!firstTime(id)) {
      log({ duplicate: id });
      return answer(204); // already accepted: a 2xx stops the platform retrying
    }
    answer(204); // answer first, well inside the 10-second limit
    const event = JSON.parse(body.toString("utf8"));
    log({ accepted: id, type: event.type });
    setImmediate(() => processEvent(event));
  });
});

server.listen(Number(process.env.PORT ?? 8787), process.env.HOST ?? "127.0.0.1", () =>
  log({ listening: server.address().port }));
