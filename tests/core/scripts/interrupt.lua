-- Spins in pure Lua until Ctrl-C (the test raises the flag itself).
while true do end
