--- Progress on stderr for long work (waits, uploads, pages), as the
-- scalekit-lua host shows it when stderr is a terminal: a table of hooks
-- for `twitter.set_defaults` (or a client's options).
-- @module scalekit.twitter.progress

return {
  on_wait = function(seconds, why)
    io.stderr:write(("\r[scalekit] %s: waiting %.1f s (Ctrl-C stops)\27[K\n"):format(why, seconds))
  end,
  on_progress = function(sent, total)
    io.stderr:write(("\r[scalekit] upload: %d / %d bytes (%d%%)\27[K"):format(
      sent, total, total > 0 and sent * 100 // total or 100))
    if sent >= total then io.stderr:write("\n") end
  end,
  on_page = function(count)
    io.stderr:write(("\r[scalekit] pages: %d\27[K"):format(count))
  end,
}
