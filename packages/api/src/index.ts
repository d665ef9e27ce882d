// @lakebed/api entry point: filled in by the package's own modules.
export {};
