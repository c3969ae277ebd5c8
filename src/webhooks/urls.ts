import { ApiError } from "../lib/errors";

/** Hosts no endpoint may name, whatever the environment: internal names a public deploy must not reach. */
const INTERNAL_SUFFIXES = [".local", ".internal", ".localhost", ".localdomain", ".home.arpa"];

const invalid = (message: string) => new ApiError("VALIDATION_FAILED", `url: ${message}`, { errors: [{ in: "body", field: "url", message }] });

const isIpLiteral = (host: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith("[") || /^\d+$/.test(host) || /^0x[0-9a-f]+$/i.test(host);

/**
 * Checks an endpoint URL against server-side request forgery: `https` only, a public DNS name (no
 * IP literal, no `localhost`, no internal suffix, not the platform's own domain), no credentials.
 * In development (`BASE_DOMAIN` is `localhost`) plain `http` to a loopback host is allowed too, so a
 * receiver on the same machine can be tried. The runtime's `global_fetch_strictly_public` flag and
 * `redirect: "manual"` guard what a DNS name resolves to and where a 3xx would lead.
 */
export function checkEndpointUrl(raw: string, baseDomain: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid("not a URL");
  }
  const host = url.hostname.toLowerCase();
  const development = baseDomain === "localhost";
  const loopback = host === "localhost" || host === "127.0.0.1" || host === "[::1]";
  if (development && url.protocol === "http:" && loopback) return url;
  if (url.protocol !== "https:") throw invalid("must be https");
  if (url.username || url.password) throw invalid("must not carry credentials");
  if (isIpLiteral(host)) throw invalid("must name a host, not an IP address");
  if (host === "localhost" || !host.includes(".") || INTERNAL_SUFFIXES.some((s) => host.endsWith(s))) throw invalid("must be a public host name");
  if (host === baseDomain || host.endsWith(`.${baseDomain}`)) throw invalid("must not be one of the platform's own hosts");
  if (raw.length > 2000) throw invalid("at most 2000 characters");
  return url;
}
