// @lakebed/native-cuda entry point: filled in by the package's own modules.
export {};
