// The device calls, in the order of the addon's table (src/native/call_kinds.h). The loader
// refuses an addon whose list differs: that addon was built from other sources.
export const CALL_KINDS = [
  "memCreate",
  "memRelease",
  "addressReserve",
  "addressFree",
  "map",
  "setAccess",
  "unmap",
  "malloc",
  "free",
  "copyToHost",
  "copyFromHost",
  "memset",
  "memGetInfo",
  "hostReserve",
  "copyOut",
  "copyIn",
  "hostRelease",
  "fillPattern",
  "checkPattern",
] as const;

export type CallKind = (typeof CALL_KINDS)[number];

export function isCallKind(name: string): name is CallKind {
  return (CALL_KINDS as readonly string[]).includes(name);
}
