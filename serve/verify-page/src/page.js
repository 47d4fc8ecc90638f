// The verify page's UI: loads (and caches) the trust, reads a certificate from the camera, an
// uploaded image or pasted text, verifies it in the browser (verify.js) and shows the outcome.
// The only things sent to the server are GET /verify/v1/trust and, after each result, the outcome
// word, the format and a short reason code (no name, no certificate id, no payload).

import jsQR from "jsqr";
import { verifyPayload } from "./verify.js";

const TRUST_URL = "/verify/v1/trust";
const OUTCOMES_URL = "/verify/v1/outcomes";
const TRUST_STORAGE_KEY = "divoc-verify-trust";
// The service worker marks a trust response it answered from its cache (network down).
const FROM_CACHE_HEADER = "x-divoc-verify-cache";

const $ = (id) => document.getElementById(id);

let trust = null;
let resultSequence = 0;

// ---------------------------------------------------------------------------------------------
// Trust: fetched once per load, kept in localStorage for when the server cannot be reached

async function loadTrust() {
  const status = $("trust-status");
  try {
    const response = await fetch(TRUST_URL, { cache: "no-store", headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const fetched = await response.json();
    checkTrustShape(fetched);
    if (response.headers.get(FROM_CACHE_HEADER)) {
      // The network is down and the service worker answered: prefer whichever copy is newer.
      const stored = readStoredTrust();
      const useStored = stored && (!fetched.generatedAt || (stored.trust.generatedAt || "") >= fetched.generatedAt);
      useTrust(useStored ? stored.trust : fetched, "cached", useStored ? stored.fetchedAt : response.headers.get(FROM_CACHE_HEADER));
      return;
    }
    const fetchedAt = new Date().toISOString();
    storeTrust(fetched, fetchedAt);
    useTrust(fetched, "fresh", fetchedAt);
  } catch (error) {
    const stored = readStoredTrust();
    if (stored) {
      useTrust(stored.trust, "cached", stored.fetchedAt);
    } else {
      trust = null;
      document.body.dataset.trust = "none";
      status.textContent = `offline: no keys cached yet (${error.message}); open this page once while connected`;
    }
  }
}

function checkTrustShape(value) {
  if (!value || typeof value !== "object" || !Array.isArray(value.keys) || typeof value.contexts !== "object") {
    throw new Error("the server's trust document is malformed");
  }
}

function readStoredTrust() {
  try {
    const stored = JSON.parse(localStorage.getItem(TRUST_STORAGE_KEY) || "null");
    if (stored && stored.trust) {
      checkTrustShape(stored.trust);
      return stored;
    }
  } catch {
    // A damaged copy is no copy.
  }
  return null;
}

function storeTrust(value, fetchedAt) {
  try {
    localStorage.setItem(TRUST_STORAGE_KEY, JSON.stringify({ fetchedAt, trust: value }));
  } catch (error) {
    // Storage full or disabled: this load still verifies; only offline use is lost.
    console.warn("could not keep the keys for offline use:", error);
  }
}

function useTrust(value, source, fetchedAt) {
  trust = value;
  document.body.dataset.trust = source;
  const lists = Object.keys(value.statusLists || {}).length;
  const what = `${value.keys.length} key${value.keys.length === 1 ? "" : "s"}, ${lists} status list${lists === 1 ? "" : "s"}`;
  const when = formatTime(fetchedAt);
  $("trust-status").textContent = source === "fresh"
    ? `Keys and status lists fetched ${when} (${what})`
    : `offline: using cached keys from ${when} (${what})`;
}

function formatTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? String(iso || "an unknown time") : new Date(t).toLocaleString();
}

// ---------------------------------------------------------------------------------------------
// Verifying and showing the result

async function verifyAndShow(input) {
  const result = $("result");
  result.removeAttribute("data-outcome");
  result.className = "checking";
  result.textContent = "Checking…";
  $("result-note").textContent = "";
  $("details").replaceChildren();
  let outcome;
  if (!trust) {
    outcome = { outcome: "INVALID", format: "unknown", code: "no-trust", reason: "no issuer keys are loaded: open this page once while connected" };
  } else {
    outcome = await verifyPayload(input, trust);
  }
  show(outcome);
  report(outcome);
}

function show(outcome) {
  const result = $("result");
  let text = outcome.outcome;
  if (outcome.outcome === "SUSPENDED" && outcome.until) text += " until " + outcome.until;
  if (outcome.outcome === "INVALID") text += ": " + outcome.reason;
  result.textContent = text;
  result.className = outcome.outcome.toLowerCase();
  result.dataset.format = outcome.format;
  result.dataset.code = outcome.code;
  result.dataset.seq = String(++resultSequence);
  result.dataset.outcome = outcome.outcome; // last: what tests wait for

  $("result-note").textContent = [outcome.warning && "Warning: " + outcome.warning, outcome.note, outcome.outcome !== "INVALID" && outcome.reason]
    .filter(Boolean).join(". ");
  const labels = [
    ["name", "Name"], ["certificateId", "Certificate"], ["vaccine", "Vaccine"], ["dose", "Dose"],
    ["date", "Date"], ["issuer", "Issuer"], ["issuedAt", "Issued"],
  ];
  const details = outcome.details || {};
  const rows = [];
  for (const [key, label] of labels) {
    let value = details[key];
    if (key === "dose" && value !== undefined && details.totalDoses !== undefined) value = `${value} of ${details.totalDoses}`;
    // Dates: the day is what a verifier compares with a card or an ID; the time is noise.
    if ((key === "date" || key === "issuedAt") && /^\d{4}-\d{2}-\d{2}T/.test(String(value))) value = String(value).slice(0, 10);
    if (value === undefined || value === null || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    rows.push(dt, dd);
  }
  $("details").replaceChildren(...rows);
}

/** Best effort: the outcome word, the format and the reason code only. */
function report(outcome) {
  const body = JSON.stringify({ outcome: outcome.outcome, format: outcome.format, reason: outcome.code || null });
  fetch(OUTCOMES_URL, { method: "POST", headers: { "content-type": "application/json" }, body, keepalive: true })
    .catch(() => {});
}

function showInputProblem(code, reason) {
  const outcome = { outcome: "INVALID", format: "unknown", code, reason };
  show(outcome);
  report(outcome);
}

// ---------------------------------------------------------------------------------------------
// Reading QR codes: an uploaded image, or the camera

/** jsQR on an image source drawn at most `maxSide` pixels wide/high; the code's raw bytes or null. */
function decodeQr(source, width, height, maxSide, inversionAttempts) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0, w, h);
  const pixels = context.getImageData(0, 0, w, h);
  const code = jsQR(pixels.data, w, h, { inversionAttempts });
  return code ? Uint8Array.from(code.binaryData) : null;
}

async function verifyImageFile(file) {
  let image;
  try {
    image = await loadImage(file);
  } catch {
    showInputProblem("unreadable-image", "the file is not an image this browser can read");
    return;
  }
  // Full size first (up to 2048 px: a photo's QR keeps enough pixels per module), then smaller,
  // which sometimes helps the binarizer with large, blurry photos.
  let bytes = null;
  for (const maxSide of [2048, 1024]) {
    bytes = decodeQr(image, image.width, image.height, maxSide, "attemptBoth");
    if (bytes || Math.max(image.width, image.height) <= maxSide) break;
  }
  if (image.close) image.close();
  if (!bytes) {
    showInputProblem("no-qr-found", "no QR code found in the image");
    return;
  }
  await verifyAndShow(bytes);
}

async function loadImage(file) {
  if (typeof createImageBitmap === "function") return createImageBitmap(file);
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}

let cameraStream = null;

async function toggleCamera() {
  if (cameraStream) {
    stopCamera("Camera stopped.");
    return;
  }
  const video = $("camera-view");
  const cameraStatus = $("camera-status");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    cameraStatus.textContent = "This browser cannot use a camera here (the page needs HTTPS).";
    return;
  }
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false });
  } catch (error) {
    cameraStatus.textContent = "The camera could not be opened: " + error.message;
    return;
  }
  video.srcObject = cameraStream;
  video.hidden = false;
  await video.play().catch(() => {});
  $("camera").textContent = "Stop camera";
  cameraStatus.textContent = "Point the camera at the certificate's QR code.";
  scanFrames(video);
}

function stopCamera(message) {
  if (cameraStream) cameraStream.getTracks().forEach((track) => track.stop());
  cameraStream = null;
  const video = $("camera-view");
  video.srcObject = null;
  video.hidden = true;
  $("camera").textContent = "Scan with camera";
  $("camera-status").textContent = message;
}

function scanFrames(video) {
  const stream = cameraStream;
  const tick = () => {
    if (cameraStream !== stream) return; // stopped or restarted
    if (video.readyState >= video.HAVE_ENOUGH_DATA && video.videoWidth > 0) {
      // 960 px keeps each frame fast enough on a phone; skip the inverted pass for the same reason.
      const bytes = decodeQr(video, video.videoWidth, video.videoHeight, 960, "dontInvert");
      if (bytes) {
        stopCamera("QR code read.");
        verifyAndShow(bytes);
        return;
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

// ---------------------------------------------------------------------------------------------

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  // The page lives at /verify (no slash), so the worker's scope must be "/verify", which the
  // server allows with `Service-Worker-Allowed: /verify` on /verify/sw.js.
  navigator.serviceWorker.register("/verify/sw.js", { scope: "/verify" }).catch((error) => {
    console.warn("offline reloads are not available:", error.message);
  });
}

function start() {
  $("verify-text").addEventListener("click", () => verifyAndShow($("payload").value));
  $("image").addEventListener("change", (event) => {
    const file = event.target.files && event.target.files[0];
    if (file) verifyImageFile(file).finally(() => { event.target.value = ""; });
  });
  $("camera").addEventListener("click", toggleCamera);
  registerServiceWorker();
  loadTrust();
}

start();
