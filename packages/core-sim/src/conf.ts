// PyTorch's allocator settings: the PYTORCH_CUDA_ALLOC_CONF syntax (`key:value,key:value`, lists
// in brackets, whitespace ignored) with PyTorch's names, validated as PyTorch 2.9+ validates them
// (c10/core/AllocatorConfig.cpp, c10/cuda/CUDAAllocatorConfig.cpp). As in PyTorch, a settings
// string is the whole configuration: keys it does not name take their defaults.
//
// The same string carries the vms policy's GMLake settings under GMLake's own names and units
// (vmmDefragment, fragLimit in bytes, defragLevel, reuseLimit, autoGC in GiB, reAlloc; GMLake reads
// them from environment variables), lakebed's own (lakebed_*) and tiering's (tiering_*). Other
// policies ignore them.
import type { AllocatorSettings } from "@lakebed/traces";

const MiB = 1024 * 1024;
/** kRoundUpPowerOfTwoIntervals: buckets of sizes starting at 1 MiB, 2 MiB, ... 32 GiB */
export const ROUNDUP_BUCKETS = 16;

export interface AllocatorConf {
  /** blocks of this size or more are never split (max_split_size_mb); null: unlimited */
  maxSplitSizeBytes: number | null;
  /** how much larger than an oversize request a cached oversize block may be (max_non_split_rounding_mb) */
  maxNonSplitRoundingBytes: number;
  /** reclaim cached segments above this fraction of the allowed memory; 0: off; needs a capacity */
  garbageCollectionThreshold: number;
  expandableSegments: boolean;
  /** divisions per power-of-two size bucket (1 MiB .. 32 GiB starts); 0: plain 512-byte rounding */
  roundupPower2Divisions: number[];
  /** the segment for 1-10 MiB requests and the large expandable page (large_segment_size_mb) */
  largeSegmentSizeBytes: number;
  /** per_process_memory_fraction, when the settings name one; null otherwise */
  perProcessMemoryFraction: number | null;
  /** the vms policy's GMLake settings */
  gmlake: GmlakeConf;
  /** the lakebed policy's settings */
  lakebed: LakebedConf;
  /** the tiering policy's settings */
  tiering: TieringConf;
}

/** How the tiering policy picks the pages it moves to the host (assembly/policies/tiering/next-use.ts). */
export type TieringVictim = "online" | "belady";

export interface TieringConf {
  /** online: from the past only; belady: the clairvoyant bound on the trace's future uses */
  victim: TieringVictim;
  /** the pinned host arena in MiB; null: sized from the trace (the most bytes it ever has live, plus a quarter) */
  hostMiB: number | null;
}

/**
 * GMLake's settings, with GMLake master's defaults (docs/policies.md says why these and not the
 * torch-1.13.1 branch's fragLimit 32 MiB, defragLevel 1, autoGC 80).
 */
export interface GmlakeConf {
  /** 0: no stitching and no reuse of stitched blocks (the large pool stays VMM-backed) */
  vmmDefragment: number;
  /** the smallest request, in bytes, that stitching may serve */
  fragLimitBytes: number;
  /** the earliest malloc stage at which stitching may run: 0 before new memory, 1 after a failed attempt, 2 after the cache was flushed */
  defragLevel: number;
  /** a cached stitched block serves a request only when its size is at most request x reuseLimit */
  reuseLimit: number;
  /** cached stitched blocks are collected (oldest first) above this many GiB of stitched ranges */
  autoGCGiB: number;
  /** > 0: new memory only for the shortfall, stitched with the free blocks */
  reAlloc: number;
}

export interface LakebedConf {
  /** idle chunks kept beyond the most pages ever touched, per mille (LakebedPolicy.slackPermille) */
  slackPermille: number;
  /** fitting free ranges placement weighs by the chunks they need (LakebedPolicy.fitWindow); 1: best fit */
  fitWindow: number;
  /** page (chunk) size of large-pool arenas in MiB, even (LakebedConfig.largePageBytes) */
  largePageMiB: number;
}

export function defaultGmlakeConf(): GmlakeConf {
  return { vmmDefragment: 1, fragLimitBytes: 512 * MiB, defragLevel: 0, reuseLimit: 10, autoGCGiB: 1000, reAlloc: 0 };
}

export function defaultAllocConf(): AllocatorConf {
  return {
    maxSplitSizeBytes: null,
    maxNonSplitRoundingBytes: 20 * MiB,
    garbageCollectionThreshold: 0,
    expandableSegments: false,
    roundupPower2Divisions: new Array<number>(ROUNDUP_BUCKETS).fill(0),
    largeSegmentSizeBytes: 20 * MiB,
    perProcessMemoryFraction: null,
    gmlake: defaultGmlakeConf(),
    lakebed: { slackPermille: 0, fitWindow: 4, largePageMiB: 20 },
    tiering: { victim: "online", hostMiB: null },
  };
}

/** Settings PyTorch accepts that change nothing an emulation can see (threads, pinned host memory). */
const IGNORED_BOOLEAN_KEYS = new Set([
  "release_lock_on_cudamalloc",
  "pinned_use_cuda_host_register",
  "pinned_use_background_threads",
  "graph_capture_record_stream_reuse",
]);
const IGNORED_NUMBER_KEYS = new Set(["pinned_num_register_threads", "pinned_reserve_segment_size_mb"]);

const isPowerOfTwo = (n: number) => n > 0 && Number.isInteger(Math.log2(n));

class ConfSyntaxError extends Error {
  constructor(text: string, message: string) {
    super(`allocator settings "${text}": ${message}`);
    this.name = "AllocatorConfError";
  }
}

/** Splits the settings into tokens: words, and the punctuation `,` `:` `[` `]`. */
function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let word = "";
  for (const ch of text) {
    if (ch === "," || ch === ":" || ch === "[" || ch === "]") {
      if (word) tokens.push(word);
      word = "";
      tokens.push(ch);
    } else if (!/\s/.test(ch)) {
      word += ch;
    }
  }
  if (word) tokens.push(word);
  return tokens;
}

/** Parses a PYTORCH_CUDA_ALLOC_CONF string; throws a one-line Error on unknown keys or bad values. */
export function parseAllocConf(text: string): AllocatorConf {
  const conf = defaultAllocConf();
  const tokens = tokenize(text);
  const fail = (message: string): never => {
    throw new ConfSyntaxError(text, message);
  };
  let i = 0;
  const expect = (token: string) => {
    if (tokens[i] !== token) fail(`expected '${token}' ${tokens[i] === undefined ? "at the end" : `before '${tokens[i]}'`}`);
    i++;
  };
  const integer = (key: string): number => {
    const t = tokens[i++];
    if (t === undefined || !/^\d+$/.test(t)) fail(`${key} needs a whole number, got '${t ?? ""}'`);
    return Number(t);
  };
  const real = (key: string): number => {
    const t = tokens[i++];
    const v = Number(t);
    if (t === undefined || t === "" || !Number.isFinite(v)) fail(`${key} needs a number, got '${t ?? ""}'`);
    return v;
  };
  const boolean = (key: string): boolean => {
    const t = tokens[i++];
    if (t !== "True" && t !== "False") fail(`${key} needs True or False, got '${t ?? ""}'`);
    return t === "True";
  };
  while (i < tokens.length) {
    const key = tokens[i++];
    if (key === ",") continue;
    expect(":");
    switch (key) {
      case "max_split_size_mb": {
        const mb = integer(key);
        if (mb < 20) fail(`max_split_size_mb must be at least 20, got ${mb}`);
        conf.maxSplitSizeBytes = mb * MiB;
        break;
      }
      case "max_non_split_rounding_mb": {
        const mb = integer(key);
        if (mb < 20) fail(`max_non_split_rounding_mb must be at least 20, got ${mb}`);
        conf.maxNonSplitRoundingBytes = mb * MiB;
        break;
      }
      case "large_segment_size_mb": {
        const mb = integer(key);
        if (mb <= 10) fail(`large_segment_size_mb must be more than 10, got ${mb}`);
        conf.largeSegmentSizeBytes = mb * MiB;
        break;
      }
      case "garbage_collection_threshold": {
        const v = real(key);
        if (!(v > 0 && v < 1)) fail(`garbage_collection_threshold must be between 0 and 1 (exclusive), got ${v}`);
        conf.garbageCollectionThreshold = v;
        break;
      }
      case "per_process_memory_fraction": {
        const v = real(key);
        if (!(v > 0 && v <= 1)) fail(`per_process_memory_fraction must be in (0, 1], got ${v}`);
        conf.perProcessMemoryFraction = v;
        break;
      }
      case "expandable_segments":
        conf.expandableSegments = boolean(key);
        break;
      case "roundup_power2_divisions":
        i = parseDivisions(tokens, i, conf.roundupPower2Divisions, fail);
        break;
      case "backend": {
        const v = tokens[i++];
        if (v === "cudaMallocAsync") fail("backend:cudaMallocAsync is CUDA's own allocator, which lakebed does not emulate");
        if (v !== "native") fail(`backend must be native or cudaMallocAsync, got '${v ?? ""}'`);
        break;
      }
      case "vmmDefragment":
        conf.gmlake.vmmDefragment = integer(key);
        break;
      case "fragLimit":
        conf.gmlake.fragLimitBytes = integer(key);
        break;
      case "defragLevel":
        conf.gmlake.defragLevel = integer(key);
        break;
      case "reuseLimit": {
        const v = real(key);
        if (!(v >= 1)) fail(`reuseLimit must be at least 1, got ${v}`);
        conf.gmlake.reuseLimit = v;
        break;
      }
      case "autoGC": {
        const v = real(key);
        if (!(v >= 0)) fail(`autoGC must be a number of GiB (0 or more), got ${v}`);
        conf.gmlake.autoGCGiB = v;
        break;
      }
      case "reAlloc":
        conf.gmlake.reAlloc = integer(key);
        break;
      case "lakebed_slack_permille":
        conf.lakebed.slackPermille = integer(key);
        break;
      case "lakebed_fit_window":
        conf.lakebed.fitWindow = Math.max(1, integer(key));
        break;
      case "lakebed_large_page_mb": {
        const v = integer(key);
        if (v < 2 || v % 2 !== 0 || v > 1024) fail(`lakebed_large_page_mb must be an even number of MiB from 2 to 1024, got ${v}`);
        conf.lakebed.largePageMiB = v;
        break;
      }
      case "tiering_victim": {
        const v = tokens[i++];
        if (v !== "online" && v !== "belady") fail(`tiering_victim must be online or belady, got '${v ?? ""}'`);
        conf.tiering.victim = v as TieringVictim;
        break;
      }
      case "tiering_host_mb": {
        const v = integer(key);
        if (v < 2) fail(`tiering_host_mb must be at least 2 (one page), got ${v}`);
        conf.tiering.hostMiB = v;
        break;
      }
      default:
        if (IGNORED_BOOLEAN_KEYS.has(key)) boolean(key);
        else if (IGNORED_NUMBER_KEYS.has(key)) integer(key);
        else fail(`unknown setting '${key}'`);
    }
    if (i < tokens.length) expect(",");
  }
  return conf;
}

/** roundup_power2_divisions: N, or [MB:N, ..., >:N]. Returns the index after the value. */
function parseDivisions(tokens: string[], start: number, out: number[], fail: (m: string) => never): number {
  let i = start;
  const division = (t: string | undefined, allowZero: boolean): number => {
    if (t === undefined || !/^\d+$/.test(t)) fail(`roundup_power2_divisions needs whole numbers, got '${t ?? ""}'`);
    const v = Number(t);
    if (!(isPowerOfTwo(v) || (allowZero && v === 0))) {
      fail(`roundup_power2_divisions: divisions must be a power of 2${allowZero ? " or 0" : ""}, got ${v}`);
    }
    return v;
  };
  if (tokens[i] !== "[") {
    out.fill(division(tokens[i], false));
    return i + 1;
  }
  i++;
  let first = true;
  let lastIndex = 0;
  while (tokens[i] !== "]") {
    if (tokens[i] === undefined) fail("roundup_power2_divisions: missing ']'");
    const key = tokens[i++];
    if (tokens[i++] !== ":") fail(`roundup_power2_divisions: expected ':' after '${key}'`);
    const value = division(tokens[i++], true);
    if (key === ">") {
      out.fill(value, lastIndex + 1);
    } else {
      if (!/^\d+$/.test(key) || !isPowerOfTwo(Number(key))) {
        fail(`roundup_power2_divisions: interval starts must be powers of 2 (MB), got '${key}'`);
      }
      const index = Math.min(Math.log2(Number(key)), ROUNDUP_BUCKETS - 1);
      if (first) {
        out.fill(value, 0, index);
        first = false;
      }
      out[index] = value;
      lastIndex = index;
    }
    if (tokens[i] === ",") i++;
    else if (tokens[i] === undefined) fail("roundup_power2_divisions: missing ']'");
    else if (tokens[i] !== "]") fail(`roundup_power2_divisions: expected ',' or ']' before '${tokens[i]}'`);
  }
  return i + 1;
}

/** The settings a trace recorded (`allocator_settings`), as an AllocatorConf; null: PyTorch's defaults. */
export function confFromSettings(settings: AllocatorSettings | null): AllocatorConf {
  if (!settings) return defaultAllocConf();
  // The settings string carries the keys the recorded fields do not (max_non_split_rounding_mb,
  // large_segment_size_mb); the recorded fields win where both speak.
  let conf: AllocatorConf;
  try {
    conf = parseAllocConf(settings.conf ?? "");
  } catch {
    conf = defaultAllocConf();
  }
  conf.maxSplitSizeBytes = settings.maxSplitSize >= 0 && settings.maxSplitSize < Number.MAX_SAFE_INTEGER ? settings.maxSplitSize : null;
  conf.garbageCollectionThreshold = settings.garbageCollectionThreshold > 0 ? settings.garbageCollectionThreshold : 0;
  conf.expandableSegments = settings.expandableSegments;
  if (settings.roundupPower2Divisions.length === ROUNDUP_BUCKETS) conf.roundupPower2Divisions = [...settings.roundupPower2Divisions];
  return conf;
}
