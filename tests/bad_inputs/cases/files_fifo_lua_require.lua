-- expect: require 'helpers': '
-- A FIFO where `require` finds a module: refused, naming it (fopen would wait
-- for a writer forever).  A missing candidate before it is skipped as usual.
assert(os.execute("mkfifo " .. args.tmp .. "/helpers.lua"))
package.path = args.tmp .. "/missing/?.lua;" .. args.tmp .. "/?.lua;" .. package.path
require("helpers")
