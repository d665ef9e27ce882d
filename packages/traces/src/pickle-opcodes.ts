/**
 * Pickle opcodes, by byte value (CPython Lib/pickletools.py is the authority for their meaning).
 *
 * Only the opcodes in DATA_OPCODES are ever executed by lakebed's decoder: they build plain data
 * (dicts, lists, tuples, strings, bytes, numbers, booleans, None) and touch the memo. Everything
 * else is refused, by name, before a single byte of its argument is looked at. The names of refused
 * opcodes exist only so that the error can say what the file tried to do.
 */

/** Byte values; an enum so that the bundler inlines them and `switch` compiles to a jump table. */
export enum Op {
  // --- allowed: framing and protocol ---
  PROTO = 0x80,
  FRAME = 0x95,
  STOP = 0x2e, // '.'
  // --- allowed: containers ---
  MARK = 0x28, // '('
  EMPTY_DICT = 0x7d, // '}'
  EMPTY_LIST = 0x5d, // ']'
  EMPTY_TUPLE = 0x29, // ')'
  EMPTY_SET = 0x8f,
  SETITEM = 0x73, // 's'
  SETITEMS = 0x75, // 'u'
  APPEND = 0x61, // 'a'
  APPENDS = 0x65, // 'e'
  ADDITEMS = 0x90,
  TUPLE = 0x74, // 't'
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  FROZENSET = 0x91,
  DICT = 0x64, // 'd' (protocol 0/1 form of a marked dict)
  LIST = 0x6c, // 'l'
  POP = 0x30, // '0'
  POP_MARK = 0x31, // '1'
  DUP = 0x32, // '2'
  // --- allowed: scalars ---
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE = 0x58, // 'X'
  BINUNICODE8 = 0x8d,
  SHORT_BINBYTES = 0x43, // 'C'
  BINBYTES = 0x42, // 'B'
  BINBYTES8 = 0x8e,
  BININT = 0x4a, // 'J'
  BININT1 = 0x4b, // 'K'
  BININT2 = 0x4d, // 'M'
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  BINFLOAT = 0x47, // 'G'
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  NONE = 0x4e, // 'N'
  // --- allowed: memo ---
  MEMOIZE = 0x94,
  BINPUT = 0x71, // 'q'
  LONG_BINPUT = 0x72, // 'r'
  BINGET = 0x68, // 'h'
  LONG_BINGET = 0x6a, // 'j'
}

/**
 * Opcodes that exist in the pickle protocol but are refused: they import or call Python objects,
 * reach outside the file (persistent ids, out-of-band buffers), or are text-protocol forms no
 * PyTorch snapshot uses.
 */
const REFUSED_NAMES: Record<number, string> = {
  0x63: "GLOBAL",
  0x93: "STACK_GLOBAL",
  0x52: "REDUCE",
  0x62: "BUILD",
  0x69: "INST",
  0x6f: "OBJ",
  0x81: "NEWOBJ",
  0x92: "NEWOBJ_EX",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x50: "PERSID",
  0x51: "BINPERSID",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
  0x49: "INT",
  0x4c: "LONG",
  0x46: "FLOAT",
  0x53: "STRING",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x56: "UNICODE",
  0x70: "PUT",
  0x67: "GET",
  0x96: "BYTEARRAY8",
};

/** A description of a byte that is not an allowed opcode, for error messages. */
export function describeRefusedOpcode(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, "0")}`;
  const name = REFUSED_NAMES[byte];
  if (name === undefined) return `unknown pickle opcode ${hex}`;
  return `pickle opcode ${name} (${hex}) is not allowed: only plain-data opcodes are decoded, nothing a file names is imported or run`;
}
