--- Seeing a run progress (design.md section 9): a progress bar with loss, images/s
-- and ETA when standard output is a terminal, plain lines every `log_every` seconds
-- otherwise, a summary line per epoch, and every record also as one JSON line in a
-- metrics file (<out>/metrics.jsonl).
--
--     local p = progress.new { mode = "auto", metrics = "runs/x/metrics.jsonl" }
--     p:epoch_start(epoch, epochs, batches)
--     p:step(done, {loss = .., lr = .., images = ..})   -- after each step
--     p:epoch_end(record)                               -- the epoch's summary
--     p:event("start", {...}); p:close()
--
-- JSON lines: one object each, keys sorted, with "event" ("start", "resume", "step",
-- "epoch", "interrupted", "diverged", "done") and "time" (seconds since the Unix
-- epoch). Non-finite numbers are written as null. Accuracies are percentages.
-- @module lunet.progress
local core = require "lunet.core"

local M = {}

local clock = core.wall_clock

-------------------------------------------------------------------------- JSON
local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return named[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function encode(v, out)
  local t = type(v)
  if t == "table" then
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    if n > 0 and n == #v then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        encode(x, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = json_string(k) .. ":"
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" then
    out[#out + 1] = json_string(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    elseif math.type(v) == "integer" then
      out[#out + 1] = tostring(v)
    else
      out[#out + 1] = ("%.9g"):format(v)
    end
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  else
    out[#out + 1] = "null"
  end
end

--- One value as JSON text (tables with keys 1..n are arrays, other tables objects
-- with sorted keys; functions and non-finite numbers become null).
function M.json(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

-------------------------------------------------------------------------- text
--- Seconds as "1:02:03" or "2:03".
function M.duration(s)
  if s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  local h, m, sec = s // 3600, s % 3600 // 60, s % 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, sec) end
  return ("%d:%02d"):format(m, sec)
end

local function pct(x) return x and ("%.2f%%"):format(x) or "-" end

--- The summary line of an epoch record (see lunet.train for its fields).
function M.epoch_line(r, epochs)
  local parts = {
    ("epoch %d/%d"):format(r.epoch, epochs),
    ("loss %.4f"):format(r.train_loss),
  }
  if r.train_reg then parts[#parts + 1] = ("reg %.3g"):format(r.train_reg) end
  parts[#parts + 1] = ("train top1 %s top5 %s"):format(pct(r.train_acc1), pct(r.train_acc5))
  parts[#parts + 1] = ("test top1 %s top5 %s"):format(pct(r.test_acc1), pct(r.test_acc5))
  parts[#parts + 1] = ("lr %.4g"):format(r.lr)
  parts[#parts + 1] = ("%.0f img/s"):format(r.images_per_s or 0)
  if r.data_wait_s and r.train_s and r.train_s > 0 then
    parts[#parts + 1] = ("data wait %.0f%%"):format(100 * r.data_wait_s / r.train_s)
  end
  parts[#parts + 1] = M.duration((r.train_s or 0) + (r.eval_s or 0))
  return table.concat(parts, "  ")
end

-------------------------------------------------------------------------- Progress
local Progress = {}
Progress.__index = Progress

--- opts: mode = "auto" | "bar" | "lines" | "none" ("auto": a bar when stdout is a
-- terminal, else lines; "none" prints nothing but still writes the metrics),
-- log_every = 30 (seconds between lines), metrics = path of the JSON-lines file
-- (appended to; nil: none), out = io.stdout, width = 24 (bar characters).
function M.new(opts)
  opts = opts or {}
  local mode = opts.mode or "auto"
  if mode == "auto" then mode = core.stdout_is_tty() and "bar" or "lines" end
  local self = setmetatable({
    mode = mode, log_every = opts.log_every or 30, out = opts.out or io.stdout,
    width = opts.width or 24, metrics_path = opts.metrics,
  }, Progress)
  if self.metrics_path then
    local f, err = io.open(self.metrics_path, "a")
    if not f then error("progress: cannot open the metrics file: " .. tostring(err), 2) end
    self.metrics = f
  end
  return self
end

--- Writes one JSON line {event = name, time = now, ...fields}.
function Progress:event(name, fields)
  if not self.metrics then return end
  local rec = {}
  for k, v in pairs(fields or {}) do rec[k] = v end
  rec.event, rec.time = name, os.time()
  self.metrics:write(M.json(rec), "\n")
  self.metrics:flush()
end

--- Prints a line of text (clearing a bar being drawn).
function Progress:print(text)
  if self.mode == "none" then return end
  self:clear_bar()
  self.out:write(text, "\n")
  self.out:flush()
end

function Progress:clear_bar()
  if self.bar_drawn then
    self.out:write("\r\27[K")
    self.bar_drawn = false
  end
end

--- Starts an epoch of `batches` steps; `first` steps are already done (a resumed
-- epoch). `remaining_after` is the number of epochs after this one (for the ETA).
function Progress:epoch_start(epoch, epochs, batches, first, remaining_after)
  self.epoch, self.epochs, self.batches = epoch, epochs, batches
  self.first = first or 0
  self.remaining_after = remaining_after or 0
  self.t0 = clock()
  self.last_print = self.t0
  self.last_draw = 0
end

-- Seconds per step so far in this epoch, or nil.
function Progress:step_time(done)
  local steps = done - self.first
  if steps <= 0 then return nil end
  return (clock() - self.t0) / steps
end

--- After each step: done = steps done in this epoch; s = {loss, lr, images (per
-- second, this epoch), eval_s (the last evaluation's seconds, for the ETA)}.
function Progress:step(done, s)
  if self.mode == "none" then return end
  local now = clock()
  local per = self:step_time(done)
  local eta_epoch = per and per * (self.batches - done) or nil
  local eta_run = eta_epoch and eta_epoch + self.remaining_after * (per * self.batches + (s.eval_s or 0))
  if self.mode == "bar" then
    if now - self.last_draw < 0.2 and done < self.batches then return end
    self.last_draw = now
    local filled = math.floor(self.width * done / self.batches + 0.5)
    local text = ("\repoch %d/%d [%s%s] %d/%d  loss %.4f  lr %.4g  %.0f img/s  ETA %s (run %s)\27[K"):format(
      self.epoch, self.epochs, ("#"):rep(filled), ("."):rep(self.width - filled), done,
      self.batches, s.loss, s.lr, s.images or 0, M.duration(eta_epoch or 0 / 0),
      M.duration(eta_run or 0 / 0))
    self.out:write(text)
    self.out:flush()
    self.bar_drawn = true
  elseif self.mode == "lines" then
    if now - self.last_print < self.log_every then return end
    self.last_print = now
    self.out:write(("epoch %d/%d  step %d/%d  loss %.4f  lr %.4g  %.0f img/s  ETA %s (run %s)\n"):format(
      self.epoch, self.epochs, done, self.batches, s.loss, s.lr, s.images or 0,
      M.duration(eta_epoch or 0 / 0), M.duration(eta_run or 0 / 0)))
    self.out:flush()
  end
end

--- Ends an epoch: prints its summary line and writes its JSON line.
function Progress:epoch_end(record)
  self:print(M.epoch_line(record, self.epochs))
  self:event("epoch", record)
end

function Progress:close()
  self:clear_bar()
  if self.metrics then
    self.metrics:close()
    self.metrics = nil
  end
end

M.Progress = Progress

return M
