// How shards are named: plain rules with no imports, so the scripts that run shards locally
// (scripts/local-platform.ts) share them with the Worker.

/** The first shard: the router, whose Worker, queues and databases keep their unsharded names. */
export const FIRST_SHARD = "s1";

/** A shard's name: `s1`, `s2`, … */
export const SHARD_NAME = /^s[1-9][0-9]{0,3}$/;

/**
 * A shard's Worker name, which also prefixes its queues: `tessera` for s1 (its names predate
 * shards), `tessera-s2` and so on after it. A dispatch namespace holds the shards' Workers under it.
 */
export const shardScript = (shard: string): string => (shard === FIRST_SHARD ? "tessera" : `tessera-${shard}`);

/** The service binding a router reaches a shard by locally: `SHARD_S2`. */
export const shardBinding = (shard: string): `SHARD_${string}` => `SHARD_${shard.toUpperCase()}`;
