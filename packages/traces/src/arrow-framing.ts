/**
 * Checks the framing of an Arrow IPC file before arrow-js reads it. arrow-js trusts every length and
 * offset in a file's flatbuffers: a damaged footer that claims 2^31 record batches, or a schema that
 * claims 2^31 fields, makes it loop for minutes building objects from bytes beyond the file; a
 * record-batch block that points at a message of another kind makes its batch iterator loop forever
 * (it only advances on a record batch); an unknown type id ends in "Unrecognized type: undefined".
 * The fuzzers found each of these (test/fuzz). This walk reads only what arrow-js will read and
 * checks that it lies inside the file:
 *
 *   "ARROW1\0\0" | messages ... | footer flatbuffer | int32 footer length | "ARROW1"
 *
 *   footer:  schema, dictionaries: [Block], recordBatches: [Block]
 *   Block:   { offset: i64, metaDataLength: i32, bodyLength: i64 }  (24 bytes)
 *   message: [0xFFFFFFFF] int32 length | Message flatbuffer (header: Schema | DictionaryBatch |
 *            RecordBatch) | body (bodyLength bytes: the buffers of the batch)
 *
 * Flatbuffer layout (little-endian): a table starts with an int32 back to its vtable; the vtable is
 * [u16 vtable size, u16 table size, u16 offset of each field (0: absent)]; a field holding a table,
 * vector or string holds a u32 offset forward from itself; a vector is a u32 count, then elements.
 * Every count is bounded by the bytes that remain, so no walk here is longer than the file.
 *
 * The result is what is wrong, in words, or, when the framing holds, what the stated limits on Arrow
 * files need (arrow-limits.ts): the schema's fields and the largest dictionary batch's entries,
 * measured here because arrow-js builds every one of them.
 */
const MAGIC = "ARROW1";
const BLOCK_BYTES = 24;
const FIELD_NODE_BYTES = 16;
const BUFFER_BYTES = 16;
const HEADER_DICTIONARY_BATCH = 2;
const HEADER_RECORD_BATCH = 3;
/** Arrow's Type enum: Null (1) .. LargeListView (26) */
const LAST_TYPE_ID = 26;
/** nesting of fields (struct of list of ...) deeper than this is not a trace */
const MAX_FIELD_DEPTH = 16;

class Framing extends Error {}

/** The framing walk's measures of a file whose framing holds. */
export interface ArrowFileShape {
  /** fields of the schema, at any depth */
  columns: number;
  /** rows of the largest dictionary batch (0: none) */
  largestDictionary: number;
}

export type ArrowFraming = { problem: string } | ({ problem: null } & ArrowFileShape);

/** What the walk has counted so far. */
class Counts implements ArrowFileShape {
  columns = 0;
  largestDictionary = 0;
}

/** Bounds-checked reads of a flatbuffer lying in bytes [start, end) of the file. */
class Flatbuffer {
  constructor(
    private readonly view: DataView,
    private readonly start: number,
    private readonly end: number,
    private readonly what: string,
  ) {}

  private need(at: number, bytes: number): void {
    if (!(at >= this.start && at + bytes <= this.end)) throw new Framing(`the ${this.what} points outside itself (byte ${at})`);
  }
  u8(at: number): number {
    this.need(at, 1);
    return this.view.getUint8(at);
  }
  u16(at: number): number {
    this.need(at, 2);
    return this.view.getUint16(at, true);
  }
  u32(at: number): number {
    this.need(at, 4);
    return this.view.getUint32(at, true);
  }
  i64(at: number): number {
    this.need(at, 8);
    const v = this.view.getBigInt64(at, true);
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Framing(`the ${this.what} holds a length or offset of ${v}`);
    return Number(v);
  }
  root(): number {
    return this.table(this.start);
  }
  /** the table an offset at `at` points to */
  table(at: number): number {
    const t = at + this.u32(at);
    this.need(t, 4);
    const vtable = t - this.view.getInt32(t, true);
    const vtableBytes = this.u16(vtable);
    if (vtableBytes < 4 || vtableBytes % 2 !== 0) throw new Framing(`the ${this.what} has a table with a vtable of ${vtableBytes} bytes`);
    this.need(vtable, vtableBytes);
    return t;
  }
  /** where field `i` of table `t` lies, or -1 when absent */
  field(t: number, i: number): number {
    const vtable = t - this.view.getInt32(t, true);
    if (4 + 2 * i >= this.u16(vtable)) return -1;
    const off = this.u16(vtable + 4 + 2 * i);
    return off === 0 ? -1 : t + off;
  }
  /** the vector an offset at `at` points to: where its elements start, and their count */
  vector(at: number, elementBytes: number): { first: number; count: number } {
    const v = at + this.u32(at);
    const count = this.u32(v);
    if (count > (this.end - v - 4) / elementBytes) throw new Framing(`the ${this.what} claims ${count} entries in a vector with room for fewer`);
    return { first: v + 4, count };
  }
  string(at: number): void {
    this.vector(at, 1);
  }
  /** each table of the vector of tables at field `i` of `t` (none when absent) */
  tables(t: number, i: number): number[] {
    const f = this.field(t, i);
    if (f < 0) return [];
    const { first, count } = this.vector(f, 4);
    return Array.from({ length: count }, (_, k) => this.table(first + 4 * k));
  }
}

export function arrowFraming(bytes: Uint8Array): ArrowFraming {
  const counts = new Counts();
  try {
    checkFile(bytes, counts);
    return { problem: null, columns: counts.columns, largestDictionary: counts.largestDictionary };
  } catch (e) {
    if (e instanceof Framing) return { problem: e.message };
    throw e;
  }
}

function checkFile(bytes: Uint8Array, counts: Counts): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  const text = (at: number) => String.fromCharCode(...bytes.subarray(at, at + MAGIC.length));
  if (n < 2 * MAGIC.length + 6 || text(0) !== MAGIC) throw new Framing("it does not start with ARROW1");
  if (text(n - MAGIC.length) !== MAGIC) throw new Framing("it does not end with ARROW1 (a truncated file?)");
  const footerBytes = view.getInt32(n - MAGIC.length - 4, true);
  const footerStart = n - MAGIC.length - 4 - footerBytes;
  if (!(footerBytes > 0 && footerStart >= 8)) throw new Framing(`its footer length ${footerBytes} does not fit the file`);
  const footer = new Flatbuffer(view, footerStart, footerStart + footerBytes, "footer");
  const root = footer.root();
  const schema = footer.field(root, 1);
  if (schema < 0) throw new Framing("its footer has no schema");
  checkSchema(footer, footer.table(schema), counts);
  for (const [fieldIndex, header, kind] of [
    [2, HEADER_DICTIONARY_BATCH, "dictionary batch"],
    [3, HEADER_RECORD_BATCH, "record batch"],
  ] as const) {
    const at = footer.field(root, fieldIndex);
    if (at < 0) continue;
    const { first, count } = footer.vector(at, BLOCK_BYTES);
    for (let k = 0; k < count; k++) {
      const block = first + k * BLOCK_BYTES;
      const rows = checkMessage(view, footerStart, footer.i64(block), view.getInt32(block + 8, true), footer.i64(block + 16), header, `${kind} ${k}`);
      if (header === HEADER_DICTIONARY_BATCH) counts.largestDictionary = Math.max(counts.largestDictionary, rows);
    }
  }
}

function checkSchema(fb: Flatbuffer, schema: number, counts: Counts): void {
  for (const f of fb.tables(schema, 1)) checkField(fb, f, 0, counts);
  for (const kv of fb.tables(schema, 2)) checkKeyValue(fb, kv);
  const features = fb.field(schema, 3);
  if (features >= 0) fb.vector(features, 8);
}

function checkField(fb: Flatbuffer, field: number, depth: number, counts: Counts): void {
  if (depth > MAX_FIELD_DEPTH) throw new Framing(`its schema nests fields more than ${MAX_FIELD_DEPTH} deep`);
  counts.columns++;
  const name = fb.field(field, 0);
  if (name >= 0) fb.string(name);
  const typeId = fb.field(field, 2);
  const type = typeId < 0 ? 0 : fb.u8(typeId);
  if (type < 1 || type > LAST_TYPE_ID) throw new Framing(`its schema has a field of unknown type ${type}`);
  const typeTable = fb.field(field, 3);
  if (typeTable >= 0) fb.table(typeTable);
  const dictionary = fb.field(field, 4);
  if (dictionary >= 0) {
    const d = fb.table(dictionary);
    const indexType = fb.field(d, 1);
    if (indexType >= 0) fb.table(indexType);
  }
  for (const child of fb.tables(field, 5)) checkField(fb, child, depth + 1, counts);
  for (const kv of fb.tables(field, 6)) checkKeyValue(fb, kv);
}

function checkKeyValue(fb: Flatbuffer, kv: number): void {
  for (const i of [0, 1]) {
    const s = fb.field(kv, i);
    if (s >= 0) fb.string(s);
  }
}

/**
 * A block of the footer: a message of the expected kind, and its body, inside the file's messages.
 * Returns the rows its batch claims.
 */
function checkMessage(view: DataView, messagesEnd: number, offset: number, metaBytes: number, bodyBytes: number, header: number, what: string): number {
  if (!(offset >= 8 && metaBytes > 8 && offset + metaBytes + bodyBytes <= messagesEnd)) {
    throw new Framing(`its ${what} lies outside the file (offset ${offset}, ${metaBytes} + ${bodyBytes} bytes)`);
  }
  let at = offset;
  if (view.getUint32(at, true) === 0xffffffff) at += 4;
  const length = view.getInt32(at, true);
  if (!(length > 0 && at + 4 + length <= offset + metaBytes)) throw new Framing(`its ${what} has a message length of ${length} that does not fit its block`);
  const fb = new Flatbuffer(view, at + 4, at + 4 + length, what);
  const message = fb.root();
  const headerType = fb.field(message, 1);
  if (headerType < 0 || fb.u8(headerType) !== header) throw new Framing(`its ${what} holds another kind of message`);
  const headerAt = fb.field(message, 2);
  if (headerAt < 0) throw new Framing(`its ${what} has no header`);
  const bodyAt = fb.field(message, 3);
  const messageBody = bodyAt < 0 ? 0 : fb.i64(bodyAt);
  if (messageBody > bodyBytes) throw new Framing(`its ${what} claims a body of ${messageBody} bytes in a block of ${bodyBytes}`);
  for (const kv of fb.tables(message, 4)) checkKeyValue(fb, kv);
  let batch = fb.table(headerAt);
  if (header === HEADER_DICTIONARY_BATCH) {
    const data = fb.field(batch, 1);
    if (data < 0) throw new Framing(`its ${what} has no data`);
    batch = fb.table(data);
  }
  // A lakebed trace has no Null-typed column, so every row of every column takes at least a bit of
  // the body; a larger count would make arrow-js build arrays far beyond the file (a Utf8
  // dictionary claiming 2^31 strings exhausted the heap outright, found by the fuzz campaign).
  const maxRows = 8 * messageBody;
  const rowsAt = fb.field(batch, 0);
  const rows = rowsAt < 0 ? 0 : fb.i64(rowsAt);
  if (rows > maxRows) throw new Framing(`its ${what} claims ${rows} rows in a body of ${messageBody} bytes`);
  const nodes = fb.field(batch, 1);
  if (nodes >= 0) {
    const { first, count } = fb.vector(nodes, FIELD_NODE_BYTES);
    for (let k = 0; k < count; k++) {
      const length = fb.i64(first + k * FIELD_NODE_BYTES);
      const nulls = fb.i64(first + k * FIELD_NODE_BYTES + 8);
      if (length > maxRows || nulls > length) throw new Framing(`its ${what} has a column of ${length} values (${nulls} null) in a body of ${messageBody} bytes`);
    }
  }
  const buffers = fb.field(batch, 2);
  if (buffers >= 0) {
    const { first, count } = fb.vector(buffers, BUFFER_BYTES);
    for (let k = 0; k < count; k++) {
      const start = fb.i64(first + k * BUFFER_BYTES);
      const bytes = fb.i64(first + k * BUFFER_BYTES + 8);
      if (start + bytes > messageBody) throw new Framing(`its ${what} has a buffer [${start}, +${bytes}) outside its body of ${messageBody} bytes`);
    }
  }
  const compression = fb.field(batch, 3);
  if (compression >= 0) fb.table(compression);
  const variadic = fb.field(batch, 4);
  if (variadic >= 0) fb.vector(variadic, 8);
  return rows;
}
