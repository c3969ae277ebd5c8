import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiProblem, type Place, type Session, session, whereAmI } from "./api";
import { AcceptInvitation, SignIn, SignUp } from "./auth";
import { AuditPage, CompliancePage } from "./audit";
import { CalendarPage, ContentPage } from "./content";
import { Permissions } from "./data";
import { KnowledgeBasePage, KnowledgePage } from "./knowledge";
import { PostPage } from "./post";
import { PromptPage, PromptsPage } from "./prompts";
import { OperatorApp } from "./operator";
import { TeamPage } from "./team";
import { EndpointPage, WebhooksPage } from "./webhooks";
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
  const [me, setMe] = useState<Me | null>(null);
  useEffect(() => {
    adoptHandedSession();
    setSignedIn(session.get() !== null);
    const signedOut = () => {
      setSignedIn(false);
      setMe(null);
    };
    addEventListener("tessera:signed-out", signedOut);
    whereAmI()
      .then(setPlace)
      .catch((err: unknown) => setFailure(err instanceof ApiProblem ? err.message : "The console could not start."));
  }, []);
  const [meFailure, setMeFailure] = useState<string | null>(null);
  useEffect(() => {
    if (!signedIn || me) return;
    // Asked beside the host's own question rather than after it: one round trip less before the first page.
    setMeFailure(null);
    api<Me>("/v1/me")
      .then(setMe)
      .catch((err: unknown) => setMeFailure(err instanceof ApiProblem ? err.message : "Your account could not be loaded."));
  }, [signedIn]);
  if (failure) return <main class="narrow"><p role="alert" class="error">{failure}</p></main>;
  if (!place) return <main class="narrow"><p class="loading">Loading Tessera…</p></main>;
  if (place.kind === "platform") return path.startsWith("/operator") ? <OperatorApp /> : <SignUp baseDomain={place.baseDomain} />;
  // A review link needs no account: its token is the credential.
  if (path.startsWith("/review/")) return <GuestReview token={decodeURIComponent(path.slice("/review/".length))} />;
  if (path.startsWith("/invite/") && !signedIn) return <AcceptInvitation tenant={place.tenant} token={decodeURIComponent(path.slice("/invite/".length))} onSignedIn={() => setSignedIn(true)} />;
  if (!signedIn) return <SignIn tenant={place.tenant} onSignedIn={() => setSignedIn(true)} />;
  if (!me) return <main class="narrow">{meFailure ? <p role="alert" class="error">{meFailure}</p> : <p class="loading">Loading your workspace…</p>}</main>;
  const signOut = async () => {
    const s = session.get();
    await api("/v1/auth/logout", { body: { refresh_token: s?.refreshToken } }).catch(() => {});
    session.clear();
    setSignedIn(false);
    setMe(null);
    navigate("/");
  };
  return (
    <>
      <header class="bar">
        <Link href="/" class="brand">
          {place.tenant.name}
        </Link>
        <nav aria-label="Main">
          {SECTIONS.filter((sec) => !sec.needs || me.permissions.includes(sec.needs)).map((sec) => (
            <Link key={sec.href} href={sec.href} aria-current={sec.current(path) ? "page" : undefined}>
              {sec.label}
            </Link>
          ))}
        </nav>
        <span class="who">{session.get()?.user.email}</span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <Permissions.Provider value={me.permissions}>
        <main>{page(path, me)}</main>
      </Permissions.Provider>
    </>
  );
}

/** The signed-in person's role and permissions: which sections and controls the console shows. */
interface Me {
  user: { id: string; email: string; name: string };
  role: string;
  permissions: string[];
}

/** The main navigation; a section shows when the person holds its permission. */
const SECTIONS: { href: string; label: string; needs?: string; current: (path: string) => boolean }[] = [
  { href: "/projects", label: "Projects", current: (p) => p === "/" || p.startsWith("/projects") },
  { href: "/prompts", label: "Prompts", needs: "prompts:read", current: (p) => p.startsWith("/prompts") },
  { href: "/usage", label: "Usage", needs: "usage:read", current: (p) => p === "/usage" },
  { href: "/team", label: "Team", needs: "members:read", current: (p) => p === "/team" },
  { href: "/webhooks", label: "Webhooks", needs: "webhooks:read", current: (p) => p.startsWith("/webhooks") },
  { href: "/audit", label: "Audit", needs: "audit:read", current: (p) => p === "/audit" },
  { href: "/compliance", label: "Data", current: (p) => p === "/compliance" },
];

/** The page an address shows. */
function page(path: string, me: Me) {
  const can = (p: string) => me.permissions.includes(p);
  const [, first, id, second, childId] = path.split("/");
  if (path === "/" || (first === "projects" && !id)) return <Projects />;
  if (first === "projects" && id && second === "conversations" && childId) return <ChatPage projectId={id} conversationId={childId} />;
  if (first === "projects" && id && !second) return <ProjectPage projectId={id} />;
  if (first === "projects" && id && second === "content") return <ContentPage projectId={id} canWrite={can("posts:write")} canReview={can("posts:review")} />;
  if (first === "projects" && id && second === "calendar") return <CalendarPage projectId={id} />;
  if (first === "projects" && id && second === "knowledge") return <KnowledgePage projectId={id} canWrite={can("knowledge:write")} />;
  if (first === "knowledge" && id) return <KnowledgeBasePage kbId={id} canWrite={can("knowledge:write")} />;
  if (first === "posts" && id) return <PostPage postId={id} canWrite={can("posts:write")} canReview={can("posts:review")} />;
  if (first === "prompts" && id) return <PromptPage promptKey={decodeURIComponent(id)} canWrite={can("prompts:write")} />;
  if (first === "prompts") return <PromptsPage canWrite={can("prompts:write")} />;
  if (first === "runs" && id) return <RunPage runId={id} />;
  if (first === "usage") return <UsagePage />;
  if (first === "artifacts" && id) return <ArtifactPage artifactId={id} />;
  if (first === "team") return <TeamPage me={me} />;
  if (first === "webhooks" && id) return <EndpointPage endpointId={id} canWrite={can("webhooks:write")} />;
  if (first === "webhooks") return <WebhooksPage canWrite={can("webhooks:write")} />;
  if (first === "audit") return <AuditPage />;
  if (first === "compliance") return <CompliancePage canManage={can("compliance:manage")} />;
  if (first === "invite") return <p class="empty">You are signed in already: sign out to accept an invitation as someone else.</p>;
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
