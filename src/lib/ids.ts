const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

/** Prefixes of every id the platform mints, so an id says what it names. */
export type IdPrefix = "ten" | "usr" | "prj" | "key" | "inv" | "rtf" | "rtk" | "req" | "aud" | "cnv" | "msg" | "use" | "crd" | "agt" | "run" | "evt" | "art" | "upl" | "sck" | "sev" | "kb" | "doc" | "srch" | "whe" | "whm" | "wha" | "cmp" | "pst" | "prv" | "pcm" | "rvl" | "chn" | "psn" | "ida" | "exp" | "era" | "mig";

/**
 * A prefixed, time-ordered id: 10 characters of millisecond time then 16 random ones
 * (Crockford base32), so ids sort by creation and make stable pagination cursors.
 */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let rand = "";
  for (const b of bytes) rand += CROCKFORD[b & 31];
  return `${prefix}_${time}${rand}`;
}

/** True for a string shaped like an id with this prefix (cheap guard before a lookup). */
export function isId(prefix: IdPrefix, value: string): boolean {
  return new RegExp(`^${prefix}_[0-9a-hjkmnp-tv-z]{26}$`).test(value);
}
