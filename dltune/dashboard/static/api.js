// Talking to the dashboard's JSON API; every path segment is percent-encoded on its own.

const enc = encodeURIComponent;

/**
 * A study name as its path segment, as the server's study_segment writes it: browsers drop
 * the segments "." and ".." (even as %2E%2E), so those (and, to stay reversible, names
 * starting with "~") get a "~" in front.
 */
export function studySegment(name) {
  return enc(name === "." || name === ".." || name.startsWith("~") ? `~${name}` : name);
}

/** The study name a percent-decoded path segment stands for (see studySegment). */
export function studyNameOf(segment) {
  return segment.startsWith("~") ? segment.slice(1) : segment;
}

const seg = studySegment;

export const paths = {
  studyPage: (name) => `/studies/${seg(name)}`,
  trialPage: (name, number) => `/studies/${seg(name)}/trials/${number}`,
  studies: () => "/api/studies",
  study: (name) => `/api/studies/${seg(name)}`,
  trials: (name, cursor) => `/api/studies/${seg(name)}/trials` + (cursor ? `?after=${enc(cursor)}` : ""),
  plots: (name) => `/api/studies/${seg(name)}/plots`,
  trial: (name, number) => `/api/studies/${seg(name)}/trials/${number}`,
  csv: (name, state, q) => {
    const query = new URLSearchParams();
    if (state) query.set("state", state);
    if (q) query.set("q", q);
    const text = query.toString();
    return `/api/studies/${seg(name)}/trials.csv` + (text ? `?${text}` : "");
  },
};

/** An API answer the server refused: its status and message. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** GET url and parse its JSON; throws ApiError with the server's message. */
export async function getJSON(url) {
  return (await getJSONWithHeaders(url)).body;
}

/** GET url: {body: its parsed JSON, headers}; throws ApiError with the server's message. */
export async function getJSONWithHeaders(url) {
  const response = await fetch(url, { headers: { accept: "application/json" }, cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch (_err) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, body);
  }
  return { body, headers: response.headers };
}

let info = null;

/** The dashboard's settings (storage, poll_seconds), fetched once. */
export async function getInfo() {
  if (info === null) info = await getJSON("/api/info");
  return info;
}

/**
 * Call fn every `seconds` (after the previous call finished), pausing while the tab is
 * hidden. Returns a function that stops it.
 */
export function every(seconds, fn) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try {
        await fn();
        setStatus("");
      } catch (err) {
        setStatus(`update failed: ${err.message}`, true);
      }
    }
    if (!stopped) timer = setTimeout(tick, seconds * 1000);
  };
  timer = setTimeout(tick, seconds * 1000);
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
  };
}

/** Show a short status in the header (errors in red). */
export function setStatus(text, isError = false) {
  const node = document.getElementById("status");
  if (!node) return;
  node.textContent = text;
  node.classList.toggle("error", isError);
}
