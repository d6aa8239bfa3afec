// Job pages and job lists follow their jobs. A page works without this
// script; with it, a phase is watched with UWS 1.1 WAIT (GET the job document
// with WAIT and PHASE: the server answers when the phase changes or the wait
// runs out) and, when it changes, the page's main part is fetched again and
// swapped in without reloading: the actions the new phase allows, the times,
// the results and what the job kind adds (TAP: preview rows, pictures) appear.
// Relies on section#job (data-phase, data-job-url, data-final) and on
// #job-list tr.job[data-phase] with a.job-link; see aiouws/http/pages.py.
// No inline script anywhere: the pages' CSP forbids it.
"use strict";
(function () {
  var UWS = "http://www.ivoa.net/xml/UWS/v1.0";
  var WAIT = 30; // seconds per blocking request (the server may cap it)
  var RETRY = 2000; // ms before the first retry after a failed request...
  var RETRY_MAX = 60000; // ...doubling up to this while failures go on
  // Many pages open during an outage must not all retry every 2 s.
  var state = { updates: 0, watching: false, failures: 0, delay: RETRY };
  window.uwsPage = state;

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function withQuery(url, query) {
    return url + (url.indexOf("?") < 0 ? "?" : "&") + query;
  }

  // The job's phase after a WAIT in `phase`, or null when the job is gone.
  async function waitPhase(url, phase) {
    var query = "WAIT=" + WAIT + "&PHASE=" + encodeURIComponent(phase);
    var response = await fetch(withQuery(url, query), {
      headers: { Accept: "text/xml" },
      credentials: "same-origin",
      cache: "no-store"
    });
    if (response.status === 404 || response.status === 410) return null;
    if (!response.ok) throw new Error("HTTP " + response.status);
    var doc = new DOMParser().parseFromString(await response.text(), "application/xml");
    var found = doc.getElementsByTagNameNS(UWS, "phase")[0];
    if (!found) throw new Error("no phase in the job document");
    return found.textContent.trim();
  }

  // Fetch this page again and put its main part in place of ours.
  async function refresh() {
    var here = location.href.split("#")[0];
    var response = await fetch(here, {
      headers: { Accept: "text/html" },
      credentials: "same-origin",
      cache: "no-store"
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    var doc = new DOMParser().parseFromString(await response.text(), "text/html");
    var fresh = doc.getElementById("main");
    var old = document.getElementById("main");
    if (!fresh || !old) throw new Error("no main part");
    var focused = document.activeElement && document.activeElement.id;
    old.replaceWith(document.adoptNode(fresh));
    if (doc.title) document.title = doc.title;
    if (focused && document.getElementById(focused)) {
      document.getElementById(focused).focus();
    }
    state.updates += 1;
    document.dispatchEvent(new CustomEvent("uws:updated"));
  }

  // What to wait on: this job page's job, or on a job list the first job
  // still queued or executing (the list is fetched again when it changes).
  function watched() {
    var job = document.getElementById("job");
    if (job) {
      if (job.dataset.final === "true" || !job.dataset.jobUrl) return null;
      return { url: job.dataset.jobUrl, phase: job.dataset.phase };
    }
    var row = document.querySelector(
      "#job-list tr.job[data-phase=EXECUTING], #job-list tr.job[data-phase=QUEUED]"
    );
    var link = row && row.querySelector("a.job-link");
    return link ? { url: link.href, phase: row.dataset.phase } : null;
  }

  // Wait before asking again; the wait doubles with each failure in a row.
  async function backOff() {
    state.failures += 1;
    await sleep(state.delay);
    state.delay = Math.min(state.delay * 2, RETRY_MAX);
  }

  async function follow() {
    var target = watched();
    if (!target) return;
    state.watching = true;
    while (target) {
      var next, asked = Date.now();
      try {
        next = await waitPhase(target.url, target.phase);
      } catch (error) {
        await backOff();
        continue;
      }
      if (next === null) break;
      if (next === target.phase) {
        // A server that does not block (a proxy cut, a WAIT cap of 0): no spin.
        if (Date.now() - asked < 1000) await backOff();
        else state.delay = RETRY;
        continue;
      }
      try {
        await refresh();
      } catch (error) {
        await backOff();
        continue;
      }
      state.delay = RETRY;
      target = watched();
    }
    state.watching = false;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", follow);
  } else {
    follow();
  }
})();
