// The console's one DOM helper: build elements, find them by id, show the page's error banner,
// save a download. No framework: every page builds its DOM with these.

export const $ = (id) => document.getElementById(id);

// el("span", "badge", "text") or el("li", {className, title, …}, child, "text", …): a class
// name (string) or properties (object), then children; null, undefined and "" are skipped.
export function el(tag, classOrProps, ...children) {
  const node = document.createElement(tag);
  if (typeof classOrProps === "string") {
    if (classOrProps) node.className = classOrProps;
  } else if (classOrProps) {
    Object.assign(node, classOrProps);
  }
  for (const child of children) {
    if (child != null && child !== "") node.append(child);
  }
  return node;
}

export function button(text, onClick, className = "") {
  const b = el("button", className, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

// The page's error banner (<p id="page-error" class="error banner">); "" hides it.
export function showError(text, id = "page-error") {
  const box = $(id);
  if (!box) return;
  box.textContent = text || "";
  box.hidden = !text;
}

// The file name a response offers (Content-Disposition), else `fallback`.
export function fileName(resp, fallback) {
  const match = /filename="?([^";]+)"?/.exec(resp.headers.get("Content-Disposition") || "");
  return match ? match[1] : fallback;
}

// Save a Blob as a download (a plain link cannot carry the Authorization header); returns the
// name it was saved under.
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}
