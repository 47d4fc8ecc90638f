// Service worker of the verify page (served at /verify/sw.js, registered with scope /verify, which
// the server allows with the header `Service-Worker-Allowed: /verify`).
// It lets a verifier reload the page without a connection:
//   /verify, /verify/app.js: from the cache first (and refreshed in the background, so a new
//                            version arrives with the next load);
//   /verify/v1/trust:        from the network first; the cached copy only when the network fails,
//                            marked with the header x-divoc-verify-cache = when it was cached.
// Nothing else is cached (the outcome reports are POSTs and are never stored).

const CACHE = "divoc-verify-v1";
const PAGE = "/verify";
const SCRIPT = "/verify/app.js";
const TRUST = "/verify/v1/trust";
const FROM_CACHE_HEADER = "x-divoc-verify-cache";
const CACHED_AT_HEADER = "x-divoc-verify-cached-at";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll([PAGE, SCRIPT])).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== CACHE && name.startsWith("divoc-verify-")) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === TRUST) {
    event.respondWith(networkFirstTrust(request));
  } else if (url.pathname === PAGE || url.pathname === PAGE + "/") {
    event.respondWith(cacheFirst(PAGE, request));
  } else if (url.pathname === SCRIPT) {
    event.respondWith(cacheFirst(SCRIPT, request));
  }
});

async function cacheFirst(key, request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(key);
  const refresh = fetch(request.url, { cache: "no-cache" }).then((response) => {
    if (response.ok) return cache.put(key, response.clone()).then(() => response);
    return response;
  });
  if (cached) {
    refresh.catch(() => {}); // offline: the cached copy is all there is
    return cached;
  }
  return refresh;
}

async function networkFirstTrust(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) {
      // Remember when it was cached, to tell the verifier how old an offline copy is.
      const headers = new Headers(response.headers);
      headers.set(CACHED_AT_HEADER, new Date().toISOString());
      const body = await response.clone().arrayBuffer();
      await cache.put(TRUST, new Response(body, { status: 200, headers }));
    }
    return response;
  } catch (error) {
    const cached = await cache.match(TRUST);
    if (!cached) throw error;
    const headers = new Headers(cached.headers);
    headers.set(FROM_CACHE_HEADER, cached.headers.get(CACHED_AT_HEADER) || "unknown");
    return new Response(await cached.arrayBuffer(), { status: 200, headers });
  }
}
