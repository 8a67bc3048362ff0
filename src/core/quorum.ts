/**
 * Quorum arithmetic: majorities, and joint configurations as two majorities.
 *
 * @module
 */

/** The outcome of a ballot. */
export type VoteResult = "won" | "lost" | "pending";

/**
 * The largest index acknowledged by a majority of `voters` (0 for an empty set is avoided:
 * an empty voter set never constrains, so it yields `Infinity`).
 *
 * @param voters Voter keys.
 * @param acked The acknowledged index of a voter.
 * @returns The majority-acknowledged index.
 */
export function majorityIndex(voters: readonly string[], acked: (id: string) => number): number {
  const n = voters.length;
  if (n === 0) return Infinity;
  if (n === 1) return acked(voters[0]!);
  const xs = new Array<number>(n);
  for (let i = 0; i < n; i++) xs[i] = acked(voters[i]!);
  xs.sort((a, b) => b - a);
  return xs[n >> 1]!;
}

/**
 * The index acknowledged by a majority of the new and (if joint) of the old voters.
 *
 * @param voters New voters.
 * @param oldVoters Old voters while joint, else empty.
 * @param acked The acknowledged index of a voter.
 * @returns The jointly acknowledged index.
 */
export function jointIndex(
  voters: readonly string[],
  oldVoters: readonly string[],
  acked: (id: string) => number,
): number {
  const a = majorityIndex(voters, acked);
  const b = majorityIndex(oldVoters, acked);
  const m = Math.min(a, b);
  return m === Infinity ? 0 : m;
}

/**
 * Tallies one majority ballot.
 *
 * @param voters Voter keys.
 * @param votes Granted (`true`) or rejected (`false`) votes received so far.
 * @returns The result.
 */
export function majorityVote(
  voters: readonly string[],
  votes: ReadonlyMap<string, boolean>,
): VoteResult {
  if (voters.length === 0) return "won";
  let yes = 0;
  let no = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) yes++;
    else if (v === false) no++;
  }
  const q = (voters.length >> 1) + 1;
  if (yes >= q) return "won";
  if (no > voters.length - q) return "lost";
  return "pending";
}

/**
 * Tallies a joint ballot: both majorities must be won.
 *
 * @param voters New voters.
 * @param oldVoters Old voters while joint, else empty.
 * @param votes Votes received so far.
 * @returns The result.
 */
export function jointVote(
  voters: readonly string[],
  oldVoters: readonly string[],
  votes: ReadonlyMap<string, boolean>,
): VoteResult {
  const a = majorityVote(voters, votes);
  const b = majorityVote(oldVoters, votes);
  if (a === "lost" || b === "lost") return "lost";
  if (a === "won" && b === "won") return "won";
  return "pending";
}
