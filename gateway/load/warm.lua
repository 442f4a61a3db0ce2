-- Stores the 100 prompts: run with 100 connections, so each is asked once at the start.
package.path = package.path .. ";gateway/load/?.lua"
local p = require("prompts")
request = p.cycle(p.prompts())
