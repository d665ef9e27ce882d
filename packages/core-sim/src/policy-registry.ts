// The policies core-sim's Wasm can run, each declared once. Everything that names a policy reads
// this list: the loader (its number), the replay (its counters, its invariant names), the settings
// parser's documentation, the `lakebed` CLI and API (POLICY_NAMES, PolicyName), the HTML report, the
// property harness (test/property/policy-suites.ts) and the campaign script (scripts/campaign.mjs).
// test/policy-registry.test.ts runs every entry through the CLI, the harness and the campaign's list,
// and checks each entry against the Wasm and the settings parser; docs/adding-a-policy.md says what
// a new policy takes.
//
// This module imports nothing, so that the CLI's help text can read it without loading the
// simulator (it is the package's `@lakebed/core-sim/policies` entry).

/** One setting a policy reads, in `PYTORCH_CUDA_ALLOC_CONF` syntax (`key:value`). */
export interface PolicySetting {
  key: string;
  /** the value the policy runs with when the settings do not name the key, as the key would be written; null: off or unlimited (no value says so) */
  default: string | null;
  meaning: string;
}

/** Invariant numbers from `from` up are `${prefix}-${n - offset}` (the policy's header numbers them). */
export interface InvariantRange {
  prefix: string;
  /** the first number of the range as brokenInvariant() returns it */
  from: number;
  offset: number;
}

export interface PolicyEntry {
  /** the number setup() takes: assembly/index.ts POLICY_<NAME>, which a test compares with this */
  code: number;
  /** what `--policy` takes */
  name: string;
  /** one line, for help texts and docs */
  description: string;
  /** the folder of its AssemblyScript under packages/core-sim/assembly/policies/ */
  folder: string;
  /** the policy's own counters, in the order its counter(i) returns them (Policy.counter) */
  counters: readonly string[];
  /** how brokenInvariant()'s number reads (vms checks the caching allocator's invariants first) */
  invariants: readonly InvariantRange[];
  /** the settings it reads; PyTorch's keys where PyTorch has the option */
  settings: readonly PolicySetting[];
  /** PyTorch's expandable_segments: on for this policy whatever the settings say (the replay and the harness set it) */
  expandableSegments: boolean;
  /** it reserves address ranges and maps physical memory into them (the harness checks mappings) */
  virtualMemory: boolean;
  /**
   * How far the bytes it maps may pass a memory limit: expandable segments map a whole page (20 MiB
   * in the large pool) once the limit allows the request, as PyTorch does.
   */
  capacityOvershootBytes: number;
  /** settings strings, beyond the defaults, that reach its distinct code paths: the property harness runs each */
  harnessSettings: readonly string[];
  /**
   * A trace recorded mid-run: true when the policy rebuilds the recorded segments and their cached
   * free blocks (the caching allocator's layout-adopter), so that a live replay materializes them
   * too; absent or false when it allocates the live blocks afresh and drops the cache
   * (Policy.adoptAfresh). core-sim's src/start-state-prologue.ts reads it.
   */
  rebuildsRecordedLayout?: boolean;
  /**
   * It acts on use events (which blocks each operator touches: tiering brings a block back before
   * its use), so it replays only traces that carry them; the others never see them.
   */
  readsUses?: boolean;
}

const MiB = 1024 * 1024;

/** PyTorch's own settings: the caching allocator's, and those of the small pool that vms keeps. */
const PYTORCH_SETTINGS: readonly PolicySetting[] = [
  { key: "max_split_size_mb", default: null, meaning: "blocks of this size or more are never split (unlimited)" },
  { key: "max_non_split_rounding_mb", default: "20", meaning: "how much larger than an oversize request a cached oversize block may be" },
  { key: "roundup_power2_divisions", default: null, meaning: "divisions per power-of-two size bucket (off: 512-byte rounding)" },
  { key: "garbage_collection_threshold", default: null, meaning: "reclaim cached segments above this fraction of the allowed memory (off)" },
  { key: "large_segment_size_mb", default: "20", meaning: "the segment for 1-10 MiB requests and the large expandable page" },
  { key: "per_process_memory_fraction", default: null, meaning: "the per-process limit as a fraction of the device (none)" },
];

export const POLICY_REGISTRY = [
  {
    code: 0,
    name: "caching",
    description: "PyTorch's CUDA caching allocator, emulated exactly",
    folder: "caching",
    counters: [],
    invariants: [{ prefix: "INV-CACHE", from: 1, offset: 0 }],
    settings: [...PYTORCH_SETTINGS, { key: "expandable_segments", default: "False", meaning: "the expandable policy is this allocator with True" }],
    expandableSegments: false,
    virtualMemory: false,
    capacityOvershootBytes: 0,
    harnessSettings: ["max_split_size_mb:40,roundup_power2_divisions:4"],
    rebuildsRecordedLayout: true,
  },
  {
    code: 1,
    name: "expandable",
    description: "the caching allocator with expandable_segments:True",
    folder: "caching",
    counters: [],
    invariants: [{ prefix: "INV-CACHE", from: 1, offset: 0 }],
    settings: PYTORCH_SETTINGS,
    expandableSegments: true,
    virtualMemory: true,
    capacityOvershootBytes: 20 * MiB,
    harnessSettings: [],
    rebuildsRecordedLayout: true,
  },
  {
    code: 2,
    name: "vms",
    description: "GMLake's virtual memory stitching, re-implemented from its behaviour",
    folder: "vms",
    counters: ["stitches", "stitchReuses", "stitchesCollected", "reAllocs", "liveStitches"],
    invariants: [
      { prefix: "INV-CACHE", from: 1, offset: 0 },
      { prefix: "INV-VMS", from: 101, offset: 100 },
    ],
    settings: [
      { key: "vmmDefragment", default: "1", meaning: "0: no stitching and no reuse of stitched blocks" },
      { key: "fragLimit", default: String(512 * MiB), meaning: "the smallest request, in bytes, that stitching may serve" },
      { key: "defragLevel", default: "0", meaning: "the earliest malloc stage at which stitching may run" },
      { key: "reuseLimit", default: "10", meaning: "a cached stitched block serves a request only when its size is at most request x reuseLimit" },
      { key: "autoGC", default: "1000", meaning: "GiB of stitched ranges above which cached ones are collected" },
      { key: "reAlloc", default: "0", meaning: "> 0: new memory only for the shortfall, stitched with the free blocks" },
      ...PYTORCH_SETTINGS,
    ],
    expandableSegments: false,
    virtualMemory: true,
    capacityOvershootBytes: 0,
    // stitching from 2 MiB with reAlloc, so that the harness's sizes reach stitching, reuse and GC
    harnessSettings: ["fragLimit:2097152,reAlloc:1,autoGC:1"],
  },
  {
    code: 3,
    name: "lakebed",
    description: "this project's own: per-stream arenas packed at 512 bytes over fungible chunks (2 MiB small, 20 MiB large)",
    folder: "lakebed",
    counters: ["chunkMoves", "chunks", "touchedPagesPeak", "aliasUnmaps"],
    invariants: [{ prefix: "INV-LB", from: 1, offset: 0 }],
    settings: [
      { key: "lakebed_slack_permille", default: "0", meaning: "idle chunks kept beyond the most pages ever touched, per mille" },
      { key: "lakebed_fit_window", default: "4", meaning: "fitting free ranges placement weighs by the chunks they need (1: best fit)" },
      { key: "lakebed_large_page_mb", default: "20", meaning: "the page (chunk) size of large-pool arenas, in MiB (even, 2 to 1024)" },
      { key: "roundup_power2_divisions", default: null, meaning: "PyTorch's request rounding (off: 512 bytes)" },
      { key: "per_process_memory_fraction", default: null, meaning: "the per-process limit as a fraction of the device (none)" },
    ],
    expandableSegments: false,
    virtualMemory: true,
    capacityOvershootBytes: 0,
    // idle slack with a placement window; and 2 MiB large pages, where one chunk pool serves small
    // and large arenas and chunks move between them
    harnessSettings: ["lakebed_slack_permille:250,lakebed_fit_window:4", "lakebed_large_page_mb:2"],
  },
  {
    code: 4,
    name: "tiering",
    description: "live blocks move to pinned host memory in 2 MiB pages and back before their next use, to fit --capacity (needs use events)",
    folder: "tiering",
    counters: [
      "pagesOut", "pagesIn", "bytesOut", "bytesIn", "transferSeconds", "stallSeconds", "peakHostBytes",
      "peakDeviceBytes", "unservedUses", "firstUnservedPosition", "capacityBytes", "hostBytes",
      "shrinks", "shrinkFreedBytes", "shrinkSeconds", "refillSeconds", "droppedBytes", "residentAfterShrinkBytes",
      "prefetchedPages",
    ],
    invariants: [{ prefix: "INV-TIER", from: 1, offset: 0 }],
    settings: [
      { key: "tiering_victim", default: "online", meaning: "which pages move to the host: online (from the past) or belady (the trace's future, the bound)" },
      { key: "tiering_host_mb", default: null, meaning: "the pinned host arena in MiB (sized from the trace's peak live bytes)" },
      { key: "per_process_memory_fraction", default: null, meaning: "the per-process limit as a fraction of the device (none)" },
    ],
    expandableSegments: false,
    virtualMemory: true,
    capacityOvershootBytes: 0,
    // none: the harness's programs have no use events, so nothing moves and both victim choices
    // take the same paths; test/tiering-properties.test.ts runs both on traces with use events
    harnessSettings: [],
    readsUses: true,
  },
] as const satisfies readonly PolicyEntry[];

/** A policy's name, as `--policy` takes it. */
export type PolicyName = (typeof POLICY_REGISTRY)[number]["name"];

/** Every policy, in registry order (the order of `--policies`' default, of reports and of campaigns). */
export const POLICY_NAMES: readonly PolicyName[] = POLICY_REGISTRY.map((p) => p.name);

export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

/** The registry entry of a policy; throws one line naming the known ones for an unknown name. */
export function policyEntry(name: string): PolicyEntry {
  const entry = POLICY_REGISTRY.find((p) => p.name === name);
  if (!entry) throw new Error(`unknown policy '${name}' (one of ${POLICY_NAMES.join(", ")})`);
  return entry;
}

/** The name of invariant number n (brokenInvariant()) as the policy's header states it. */
export function invariantName(policy: PolicyName, n: number): string {
  const ranges = policyEntry(policy).invariants;
  let range = ranges[0];
  for (const r of ranges) if (n >= r.from) range = r;
  return `${range.prefix}-${n - range.offset}`;
}
