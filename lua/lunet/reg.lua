--- The orthogonality regulariser of shared filter bases (docs/method.md section 5).
--
--     local loss = F.cross_entropy(net(x), labels) + 10 * lunet.reg.orthogonality(net)
--
-- A basis tensor (r, in, k, k) is viewed as a matrix of r rows (one per basis
-- element) and in*k*k columns. The model declares how its bases are grouped in the
-- field `orthogonality_groups`: a list of AVERAGES, the penalty being their sum; each
-- average is a list of TERMS; a term is `{shared = {m1, m2, ...}, unique = {u1, ...}}`
-- where each entry is a module holding a `weight` (FilterBasis for shared bases,
-- Conv2d for unique basis filters; `unique` may be absent). For a term, S stacks the
-- rows of the shared weights (ns rows) and M stacks S and every unique weight
-- (n rows); with D = M M^T - I it contributes
--     numerator   sum of D[i, j]^2 over the ns shared rows i and all n columns j
--                 + sum over each unique U of ||U U^T - I||_F^2
--     count       ns * n + sum over each unique U of rows(U)^2
-- and an average is (sum of numerators) / (sum of counts). Without unique filters a
-- term is ||S S^T - I||_F^2 over ns^2: the groupings of method.md section 5 are
--   * ILSVRC DoubleShared: one average, one term per group with shared = {B1, B2};
--   * SingleShared, SharedSingle, MobileNetV2_Shared: one average, a term per basis;
--   * ResNet*_Shared, MobileNetV2_SharedDouble: two averages, the 3x3/expansion bases
--     and the 1x1/projection bases;
--   * CIFAR DoubleShared: one average, per group shared = {B1, B2} and unique = every
--     shared block's basis_conv1 and basis_conv2.
-- @module lunet.reg
local lunet = require "lunet"
local F = lunet.nn.functional

local reg = {}

-- The weight of module m as a matrix (rows, in*k*k).
local function rows_of(m)
  local w = m.weight
  return w:reshape(w:size(1), -1)
end

-- ||A B^T - [I 0]||_F^2 where A's rows are the first rows of B (A is (a, c), B is
-- (b, c), a <= b): sum((A B^T)^2) - 2 trace + a, the trace of the leading a x a block
-- being sum(A^2). Differentiable; no identity matrix is built.
local function off_identity_sq(a, b)
  local g = F.matmul(a, b:transpose(1, 2))             -- (a, b)
  return (g * g):sum() - 2 * (a * a):sum() + a:size(1)
end

-- Numerator (0-d tensor) and count (integer) of one term.
local function term_value(term, where)
  if type(term) ~= "table" or type(term.shared) ~= "table" or #term.shared == 0 then
    error(("reg.orthogonality: %s must be a table {shared = {modules...}, unique = "
           .. "{modules...}} with at least one shared module"):format(where), 3)
  end
  local shared = {}
  for i, m in ipairs(term.shared) do shared[i] = rows_of(m) end
  local s = #shared == 1 and shared[1] or F.cat(shared, 1)    -- (ns, c)
  local ns = s:size(1)
  local unique = term.unique or {}
  if #unique == 0 then
    return off_identity_sq(s, s), ns * ns
  end
  local all, count = { s }, 0
  local num
  for i, m in ipairs(unique) do
    local u = rows_of(m)
    all[i + 1] = u
    local sq = off_identity_sq(u, u)
    num = num and num + sq or sq
    count = count + u:size(1) * u:size(1)
  end
  local mat = F.cat(all, 1)                                   -- (n, c)
  return num + off_identity_sq(s, mat), count + ns * mat:size(1)
end

--- The orthogonality penalty of a model's shared bases, without lambdaR: a
-- differentiable 0-d tensor on the bases' device and dtype. A model whose
-- `orthogonality_groups` is empty (no shared basis) gives a 0-d zero.
-- @param model a module with the field `orthogonality_groups` (every zoo model)
function reg.orthogonality(model)
  if type(model) ~= "table" then
    error(("reg.orthogonality: expected a model (module), got %s"):format(type(model)), 2)
  end
  local groups = model.orthogonality_groups
  if type(groups) ~= "table" then
    error("reg.orthogonality: the model declares no 'orthogonality_groups' (the lunet.models "
          .. "zoo sets it; see lunet.reg for its format)", 2)
  end
  local total
  for a, avg in ipairs(groups) do
    local num, count
    for t, term in ipairs(avg) do
      local n, c = term_value(term, ("average %d, term %d"):format(a, t))
      num, count = num and num + n or n, (count or 0) + c
    end
    if num then
      local v = num / count
      total = total and total + v or v
    end
  end
  if total then return total end
  local p = model.parameters and model:parameters()[1]
  return lunet.zeros({}, p and { dtype = p:dtype(), device = p:device() } or nil)
end

return reg
