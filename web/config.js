// Where the web client finds the API and the WebSocket gateway.
// This is the local default (`make dev`). A deployment replaces this one file next to
// index.html (e.g. `aws s3 cp config.js s3://<web bucket>/config.js`) with its own URLs and
// without allowUrlOverride. See web/README.md.
window.RACE_CONFIG = {
  apiUrl: "http://127.0.0.1:8000",
  wsUrl: "ws://127.0.0.1:8001",
  // Local only: lets ?api=...&ws=... point the client at another stack (the browser tests do).
  allowUrlOverride: true,
};
