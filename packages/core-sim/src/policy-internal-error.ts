/**
 * A policy that stopped inside the WebAssembly: a trap (an out-of-bounds access, unreachable) or one
 * of its own assertions. The importer refuses every trace a policy cannot serve (traces'
 * event-checks.ts) and states its limits (traces' import-limits.ts), so reaching this is a bug in
 * lakebed, not bad input: callers that know the file say so in one line naming the file, device
 * and event (lineFor), and ask for the trace.
 */
export class PolicyInternalError extends Error {
  override readonly name = "PolicyInternalError";

  constructor(
    readonly policy: string,
    /** the Wasm's own message: the trap, or the assertion and its source line */
    readonly detail: string,
    readonly eventIndex: number,
  ) {
    super(`core-sim: internal error in the ${policy} policy at trace event ${eventIndex}: ${detail}`);
  }

  /** The one line a user sees for this error in the replay of `file`'s `device`. */
  lineFor(file: string, device: number): string {
    return `${file}: device ${device}: event ${this.eventIndex}: internal error in the ${this.policy} policy (${this.detail}); please report it, with this trace file`;
  }
}
