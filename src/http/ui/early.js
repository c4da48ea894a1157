// Opened on a session (/ui/sessions/<id>), the page asks for the session's
// row and its newest page as soon as this module and api.js are in:
// index.html loads it async, so it runs before the app's other modules are
// compiled and the document is parsed, and the app's own first calls for
// the same paths take these responses (api.js prefetch).
import { prefetch, q, sessionPath } from './api.js';

export const PAGE = 200; // events per transcript page

// The session and event a URL names; { id: null } for any other page.
export function parseRoute() {
  const m = location.pathname.match(/^\/ui\/sessions\/([^/]+)(?:\/events\/(\d+))?\/?$/);
  if (!m) return { id: null, seq: 0 };
  let id;
  try { id = decodeURIComponent(m[1]); } catch { id = m[1]; }
  return { id, seq: m[2] ? Number(m[2]) : 0 };
}

export const newestPagePath = (id) => `${sessionPath(id)}/events${q({ tail: PAGE })}`;

const route = parseRoute();
if (route.id && !route.seq) {
  prefetch(sessionPath(route.id));
  prefetch(newestPagePath(route.id));
}
