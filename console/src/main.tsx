import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiProblem, type Place, type Session, session, whereAmI } from "./api";
import { SignIn, SignUp } from "./auth";
import { ChatPage } from "./chat";
import { Link, navigate, usePath } from "./nav";
import { ArtifactPage, ProjectPage } from "./project";
import { Projects } from "./projects";
import { GuestReview } from "./guest";
import { RunPage } from "./run";
import { UsagePage } from "./usage";

/** A session handed over in the URL's fragment (after signing up on the platform host): kept, and taken out of the address bar. */
function adoptHandedSession() {
  const params = new URLSearchParams(location.hash.slice(1));
  const handed = params.get("session");
  if (!handed) return;
  session.set(JSON.parse(atob(handed)) as Session);
  history.replaceState(null, "", location.pathname);
}

function App() {
  const path = usePath();
  const [place, setPlace] = useState<Place | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [signedIn, setSignedIn] = useState(() => session.get() !== null);
  useEffect(() => {
    adoptHandedSession();
    setSignedIn(session.get() !== null);
    const signedOut = () => setSignedIn(false);
    addEventListener("tessera:signed-out", signedOut);
    whereAmI()
      .then(setPlace)
      .catch((err: unknown) => setFailure(err instanceof ApiProblem ? err.message : "The console could not start."));
  }, []);
  if (failure) return <main class="narrow"><p role="alert" class="error">{failure}</p></main>;
  if (!place) return <main class="narrow"><p class="loading">Loading Tessera…</p></main>;
  if (place.kind === "platform") return <SignUp baseDomain={place.baseDomain} />;
  // A review link needs no account: its token is the credential.
  if (path.startsWith("/review/")) return <GuestReview token={decodeURIComponent(path.slice("/review/".length))} />;
  if (!signedIn) return <SignIn tenant={place.tenant} onSignedIn={() => setSignedIn(true)} />;
  const signOut = async () => {
    const s = session.get();
    await api("/v1/auth/logout", { body: { refresh_token: s?.refreshToken } }).catch(() => {});
    session.clear();
    setSignedIn(false);
    navigate("/");
  };
  return (
    <>
      <header class="bar">
        <Link href="/" class="brand">
          {place.tenant.name}
        </Link>
        <nav aria-label="Main">
          <Link href="/projects" aria-current={path.startsWith("/projects") || path === "/" ? "page" : undefined}>
            Projects
          </Link>
          <Link href="/usage" aria-current={path === "/usage" ? "page" : undefined}>
            Usage
          </Link>
        </nav>
        <span class="who">{session.get()?.user.email}</span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>{page(path)}</main>
    </>
  );
}

/** The page an address shows. */
function page(path: string) {
  const [, first, id, second, childId] = path.split("/");
  if (path === "/" || (first === "projects" && !id)) return <Projects />;
  if (first === "projects" && id && second === "conversations" && childId) return <ChatPage projectId={id} conversationId={childId} />;
  if (first === "projects" && id && !second) return <ProjectPage projectId={id} />;
  if (first === "runs" && id) return <RunPage runId={id} />;
  if (first === "usage") return <UsagePage />;
  if (first === "artifacts" && id) return <ArtifactPage artifactId={id} />;
  return <NotFound />;
}

function NotFound() {
  return (
    <section>
      <h1>Not here</h1>
      <p>
        There is no page at this address. <Link href="/projects">Go to projects</Link>.
      </p>
    </section>
  );
}

// The page's own "Loading…" placeholder goes: render adds to what a container holds.
const root = document.getElementById("app")!;
root.textContent = "";
render(<App />, root);
