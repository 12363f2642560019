-- Reads a fixture of tests/ through the 'csv' dataset plugin and checks
-- every row against what RFC 4180 says the text column holds.
--   lmcore --plugin-path <dir with lm_dataset_csv.so> run check_rows.lua csv=tests/quoting.csv
local expected_rows = {
  ["quoting.csv"] = {
    "A plain row",
    'He said "hi", then left.',
    "first line\nsecond line",
    "",
    "Café — naïve",
    "no newline at the end",
  },
  ["empty_fields.csv"] = {"", ""}, -- empty, and quoted empty
}
local name = assert(args.csv, "csv=<fixture>"):match("[^/]*$")
local data <close> = lm.dataset("csv", {train = args.csv, column = "text"})
local n = data:count("train") -- reads the file: a broken fixture fails here, with the plugin's message
local expected = assert(expected_rows[name], "no expected rows for " .. name)
assert(n == #expected, string.format("%d rows, expected %d", n, #expected))
for i, want in ipairs(expected) do
  local got = data:row("train", i - 1)
  assert(got == want, string.format("row %d: got %q, expected %q", i - 1, got, want))
end
print(string.format("csv rows: %d ok", n))
