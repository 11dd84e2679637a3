std = "lua54"
max_line_length = 120
files["spec"] = { std = "+busted" }
exclude_files = { "build/" }
-- The catalog is data: one parameter per line reads better than wrapped lines.
files["lua/scalekit/twitter/catalog.lua"] = { max_line_length = false }
