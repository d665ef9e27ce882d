// The trace actions as the Wasm sees them: the event columns' action byte and the segment log's.
// The values are packages/traces' Action enum (src/model.ts), which the TypeScript side writes
// into the columns and reads back from the log; test/boundary-tables.test.ts fails when the two
// differ. Declared here only: the segment log re-exports the four it records.

export const ACTION_ALLOC: u8 = 1;
export const ACTION_FREE_REQUESTED: u8 = 2;
export const ACTION_FREE_COMPLETED: u8 = 3;
export const ACTION_SEGMENT_ALLOC: u8 = 4;
export const ACTION_SEGMENT_FREE: u8 = 5;
export const ACTION_SEGMENT_MAP: u8 = 6;
export const ACTION_SEGMENT_UNMAP: u8 = 7;
export const ACTION_OOM: u8 = 8;
export const ACTION_SNAPSHOT: u8 = 9;
export const ACTION_OTHER: u8 = 10;
