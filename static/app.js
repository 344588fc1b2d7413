// Progressive enhancement only: every page works without this file.
(() => {
  // Ask before destructive actions.
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (button && button.classList.contains("danger") && !window.confirm(button.textContent.trim() + "?")) {
      event.preventDefault();
    }
  });

  // Reader actions happen in place: the server answers JSON with the updated card.
  const status = document.getElementById("reader-status");
  const say = (text, isError) => {
    if (!status) return;
    status.hidden = false;
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  };
  // A form is posted with the page's fields, and `extra` (such as confirm=1) added.
  const post = (form, extra) => {
    const body = new URLSearchParams(new FormData(form));
    for (const [k, v] of Object.entries(extra || {})) body.set(k, v);
    return fetch(form.action, {
      method: "POST",
      headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
      body,
      credentials: "same-origin",
    });
  };
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement) || !form.classList.contains("js-inplace")) return;
    event.preventDefault();
    const card = form.closest(".reader-card");
    let response;
    try {
      response = await post(form);
    } catch (e) {
      say("The server could not be reached; nothing was changed.", true);
      return;
    }
    let data;
    try {
      data = await response.json();
      // The award is unusual (another course, an untagged post): ask, then post again.
      if (response.ok && data.needs_confirmation) {
        if (!window.confirm(data.message + "\n\nAward anyway?")) {
          say("Nothing was awarded.", false);
          return;
        }
        response = await post(form, { confirm: "1" });
        data = await response.json();
      }
    } catch (e) {
      // An answer that is not JSON: something happened, but the page cannot tell what.
      say("The server's answer could not be read; reload the page to see what changed.", true);
      return;
    }
    if (!response.ok) {
      say((data.error && data.error.message) || "That did not work.", true);
      return;
    }
    if (card && data.card) {
      const id = card.id;
      card.outerHTML = data.card;
      const fresh = document.getElementById(id);
      if (fresh) fresh.focus();
    }
    say(data.message || "Done.", false);
  });

  // A click on a summary shows it whole, or two lines again. Focus never changes a card's
  // height: a button moving between press and release would lose the click.
  document.addEventListener("click", (event) => {
    const summary = event.target.closest ? event.target.closest(".reader-card .summary") : null;
    if (summary && !event.target.closest("a")) summary.closest(".reader-card").classList.toggle("open");
  });

  // Keyboard: j/k move between posts, a awards the focused post's first badge once confirmed.
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    const cards = Array.from(document.querySelectorAll(".reader-card"));
    if (!cards.length) return;
    const current = document.activeElement && document.activeElement.closest ? document.activeElement.closest(".reader-card") : null;
    let index = cards.indexOf(current);
    if (event.key === "j" || event.key === "k") {
      index = event.key === "j" ? Math.min(index + 1, cards.length - 1) : Math.max(index - 1, 0);
      // The card reached shows its whole summary; the one left goes back to two lines.
      cards.forEach((c, i) => c.classList.toggle("open", i === index));
      cards[index].focus();
      cards[index].scrollIntoView({ block: "nearest" });
      event.preventDefault();
    } else if (event.key === "a" && current) {
      const form = current.querySelector("form.award-form");
      if (form) {
        event.preventDefault();
        if (window.confirm(form.dataset.confirm || "Award this badge?")) form.requestSubmit();
      }
    }
  });
})();
