import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

/** The address bar as the app's state: pages link with `navigate`, and back/forward work. */
export function navigate(to: string) {
  history.pushState(null, "", to);
  dispatchEvent(new PopStateEvent("popstate"));
}

export function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = () => setPath(location.pathname);
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  return path;
}

/** A link inside the console: followed in the page (a modified click still opens a new tab). */
export function Link(props: { href: string; class?: string; "aria-current"?: "page"; children: ComponentChildren }) {
  const follow = (e: MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(props.href);
  };
  return (
    <a href={props.href} class={props.class} aria-current={props["aria-current"]} onClick={follow}>
      {props.children}
    </a>
  );
}
