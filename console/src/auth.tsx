import { useState } from "preact/hooks";
import { api, type Session, session } from "./api";
import { submit, useAction } from "./data";
import { Field, SelectField, type Failure, FormError, failureOf, Submit } from "./form";

interface Tokens {
  access_token: string;
  refresh_token: string;
}

/** Signing in to the tenant whose host this is. */
export function SignIn({ tenant, onSignedIn }: { tenant: { name: string }; onSignedIn: () => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { busy, failure, run } = useAction();
  const signIn = submit(() =>
    run(async () => {
      try {
        const tokens = await api<Tokens>("/v1/auth/login", { body: { email, password }, auth: false });
        session.set({ accessToken: tokens.access_token, refreshToken: tokens.refresh_token, user: { id: "", email, name: "" } });
        const me = await api<{ user: Session["user"] }>("/v1/me");
        session.set({ accessToken: tokens.access_token, refreshToken: tokens.refresh_token, user: me.user });
        onSignedIn();
      } catch (err) {
        session.clear();
        throw err;
      }
    }),
  );
  return (
    <main class="narrow">
      <h1>Sign in to {tenant.name}</h1>
      <form onSubmit={signIn} noValidate>
        <Field label="Email" name="email" type="email" autoComplete="username" value={email} onInput={setEmail} failure={failure} required />
        <Field label="Password" name="password" type="password" autoComplete="current-password" value={password} onInput={setPassword} failure={failure} required />
        <FormError failure={failure} />
        <Submit busy={busy}>Sign in</Submit>
      </form>
    </main>
  );
}

interface Signup extends Tokens {
  tenant: { slug: string };
  user: Session["user"];
}

/** Signing up on the platform's host: a new tenant and its owner, then on to the tenant's own host, signed in. */
export function SignUp({ baseDomain }: { baseDomain: string }) {
  const [form, setForm] = useState({ tenantName: "", slug: "", jurisdiction: "default", name: "", email: "", password: "" });
  const [failure, setFailure] = useState<Failure | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (key: keyof typeof form) => (value: string) => setForm({ ...form, [key]: value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setFailure(null);
    try {
      const made = await api<Signup>("/v1/signup", {
        body: { tenant: { name: form.tenantName, slug: form.slug, jurisdiction: form.jurisdiction }, user: { name: form.name, email: form.email, password: form.password } },
        auth: false,
      });
      // Another host is another origin: the session travels in the fragment, which is never sent to a server.
      const handed = btoa(JSON.stringify({ accessToken: made.access_token, refreshToken: made.refresh_token, user: made.user } satisfies Session));
      location.assign(`${location.protocol}//${made.tenant.slug}.${baseDomain}${location.port ? `:${location.port}` : ""}/projects#session=${handed}`);
    } catch (err) {
      setFailure(failureOf(err));
      setBusy(false);
    }
  };
  return (
    <main class="narrow">
      <h1>Start a Tessera workspace</h1>
      <form onSubmit={submit} noValidate>
        <Field label="Workspace name" name="tenant.name" value={form.tenantName} onInput={set("tenantName")} failure={failure} required />
        <Field label="Address" name="tenant.slug" value={form.slug} onInput={set("slug")} failure={failure} required hint={`Your workspace will be at ${form.slug || "name"}.${baseDomain}`} />
        <SelectField id="field-tenant-jurisdiction" label="Where your data lives" value={form.jurisdiction} onChange={set("jurisdiction")} options={[["default", "Anywhere Cloudflare places it"], ["eu", "In the EU"]]} />
        <Field label="Your name" name="user.name" autoComplete="name" value={form.name} onInput={set("name")} failure={failure} required />
        <Field label="Email" name="user.email" type="email" autoComplete="email" value={form.email} onInput={set("email")} failure={failure} required />
        <Field label="Password" name="user.password" type="password" autoComplete="new-password" value={form.password} onInput={set("password")} failure={failure} required />
        <FormError failure={failure} />
        <Submit busy={busy}>Create workspace</Submit>
      </form>
      <p class="aside">
        The API is documented at <a href="/docs">/docs</a>. Running this platform? <a href="/operator">Operator sign-in</a>.
      </p>
    </main>
  );
}

/**
 * What an invitation link opens: a new person chooses their name and password, someone with an
 * account here already gives theirs; either way they join and are signed in.
 */
export function AcceptInvitation({ tenant, token, onSignedIn }: { tenant: { name: string }; token: string; onSignedIn: () => void }) {
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const { busy, failure, run } = useAction();
  const join = submit(() =>
    run(async () => {
      const joined = await api<Tokens & { user: Session["user"] }>(`/v1/invitations/${encodeURIComponent(token)}/accept`, { body: { name, password }, auth: false });
      session.set({ accessToken: joined.access_token, refreshToken: joined.refresh_token, user: joined.user });
      // The token leaves the address bar (and history): it is spent.
      history.replaceState(null, "", "/projects");
      dispatchEvent(new PopStateEvent("popstate"));
      onSignedIn();
    }),
  );
  return (
    <main class="narrow">
      <h1>Join {tenant.name}</h1>
      <p class="aside">New here? Choose your name and a password. Already have a Tessera account with this email? Give its password.</p>
      <form onSubmit={join} noValidate aria-label="Accept the invitation">
        <Field label="Your name" name="name" autoComplete="name" value={name} onInput={setName} failure={failure} required />
        <Field label="Password" name="password" type="password" autoComplete="new-password" value={password} onInput={setPassword} failure={failure} required hint="At least 10 characters." />
        <FormError failure={failure} />
        <Submit busy={busy}>Join</Submit>
      </form>
    </main>
  );
}
