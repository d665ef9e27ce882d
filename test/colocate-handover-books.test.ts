import { describe, expect, it } from "vitest";
import { FREE, HandoverBooks, INFER, TRAIN, type BooksPeer } from "../packages/api/src/colocate/live/handover-books.js";

/**
 * The handover books' lock (handover-books.ts) in one process: two HandoverBooks over one buffer
 * stand for the two processes, and a flag stands for each one's socket (INV-HO-4). The same code
 * between two real processes, one killed with SIGKILL holding the lock: test/colocate-live.test.ts.
 */
const P = 8;

function pair(lockTimeoutMs?: number) {
  const buffer = new ArrayBuffer(HandoverBooks.bytesFor(P));
  const train = new HandoverBooks(buffer, { lockTimeoutMs });
  train.init(P, TRAIN);
  const infer = new HandoverBooks(buffer, { token: HandoverBooks.newToken(train.token), lockTimeoutMs });
  const closed = { train: false, infer: false };
  const peer = (b: HandoverBooks, owner: number, name: string, side: keyof typeof closed): BooksPeer => ({ token: b.token, owner, name, gone: () => closed[side] });
  infer.setPeer(peer(train, TRAIN, "the training process", "train"));
  train.setPeer(peer(infer, INFER, "the inference process", "infer"));
  return { train, infer, closed };
}

describe("the handover books' lock", () => {
  it("holds the holder's token, announced to the peer, not its pid", () => {
    const { train, infer } = pair();
    expect(train.token).not.toBe(infer.token);
    expect(train.withLock(() => train.lockHolder())).toBe(train.token);
    expect(infer.withLock(() => infer.lockHolder())).toBe(infer.token);
    expect(train.lockHolder()).toBe(0);
    expect(() => infer.setPeer({ token: infer.token, owner: TRAIN, name: "the training process", gone: () => false })).toThrow(/announced books token \d+: a nonzero int32 other than/);
    expect(() => infer.setPeer({ token: 0, owner: TRAIN, name: "the training process", gone: () => false })).toThrow(/announced books token 0/);
  });

  it("is taken over from a holder whose socket closed mid-section: its half-done work reaped, the books valid", () => {
    const { train, infer, closed } = pair(60_000);
    infer.withLock(() => [5, 6, 7].forEach((c) => infer.setOwner(c, INFER))); // a handover done
    let inside: { holder: number; counts: ReturnType<HandoverBooks["counts"]>; valid: string | null } | null = null;
    const t0 = performance.now();
    // training stops inside its critical section (one chunk of two flipped) and its socket closes:
    // inference, waiting for the lock meanwhile, takes it over (the nesting stands for the other process)
    expect(() =>
      train.withLock(() => {
        train.setOwner(4, FREE);
        closed.train = true;
        inside = infer.withLock(() => ({ holder: infer.lockHolder(), counts: infer.counts(), valid: infer.isValid() }));
      }),
    ).toThrow(/INV-HO-2: the books' lock was taken from this process/); // had training come back
    expect(performance.now() - t0).toBeLessThan(1000);
    // inference held the lock and had reaped training's 4 chunks before its own section
    expect(inside).toEqual({ holder: infer.token, counts: { free: 5, train: 0, infer: 3 }, valid: null });
    expect(infer.peerReaped).toBe(4);
    expect(infer.reapPeer()).toBe(4); // once
    for (const c of [0, 1, 2, 3]) expect([infer.owner(c), infer.lastOwner(c)]).toEqual([FREE, TRAIN]);
    expect([infer.owner(4), infer.lastOwner(4)]).toEqual([FREE, TRAIN]);
    expect(infer.lockHolder()).toBe(0);
  });

  it("waits for a live holder without spinning a core, then fails in one line", () => {
    const { train, infer } = pair(300);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let err: Error | null = null;
    train.withLock(() => {
      try {
        infer.withLock(() => 0);
      } catch (e) {
        err = e as Error;
      }
    });
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    expect(err!.message).toMatch(/^the books' lock: held by the training process \(token \d+\), whose socket is still open, for 3\d\d ms: gave up after 300 ms$/);
    expect(wall).toBeGreaterThanOrEqual(299);
    expect(wall).toBeLessThan(3000);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(0.5 * wall); // slept, mostly
    expect(infer.isValid()).toBeNull();
  });

  it("fails on a token that is nobody's, and on a nested take", () => {
    const { infer } = pair(50);
    Atomics.store(infer.words, 0, 12345);
    expect(() => infer.withLock(() => 0)).toThrow(/held by token 12345, neither this process's \(\d+\) nor its peer's \(\d+\).*gave up after 50 ms/);
    Atomics.store(infer.words, 0, 0);
    expect(() => infer.withLock(() => infer.withLock(() => 0))).toThrow(/already held by this process .*does not nest/);
    expect(infer.lockHolder()).toBe(0);
  });
});
