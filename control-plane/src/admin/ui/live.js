// meshplug dashboard: refresh <main> when /ui/events says something changed. The pages work
// without this script; it only saves the reload.
(function () {
  const badge = () => document.getElementById("live");
  let busy = false, again = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const answer = await fetch(location.href, {
        headers: { "x-meshplug-fragment": "1" }, credentials: "same-origin",
      });
      if (answer.ok) {
        const main = document.querySelector("main");
        const open = document.activeElement && main.contains(document.activeElement);
        if (main && !open) main.outerHTML = await answer.text();
      }
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  const events = new EventSource("/ui/events");
  events.addEventListener("open", () => { badge().textContent = "live"; badge().dataset.live = "yes"; });
  events.addEventListener("error", () => { badge().textContent = "reconnecting"; badge().dataset.live = "no"; });
  events.addEventListener("change", refresh);
})();
