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
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement) || !form.classList.contains("js-inplace")) return;
    event.preventDefault();
    const card = form.closest(".reader-card");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
      });
      const data = await response.json();
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
    } catch (e) {
      say("The server could not be reached; nothing was changed.", true);
    }
  });

  // Keyboard: j/k move between posts, a awards the focused post's first badge.
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
      cards[index].focus();
      cards[index].scrollIntoView({ block: "nearest" });
      event.preventDefault();
    } else if (event.key === "a" && current) {
      const form = current.querySelector("form.award-form");
      if (form) {
        form.requestSubmit();
        event.preventDefault();
      }
    }
  });
})();
