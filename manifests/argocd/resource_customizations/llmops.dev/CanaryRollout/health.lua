-- Argo CD health of a CanaryRollout: promoted is Healthy, rolled back (AnalysisFailed,
-- EvaluationFailed, Aborted) is Degraded, a pause (manual, for missing metrics, or an evaluation
-- without a verdict) is Suspended, every other phase is Progressing.
local hs = {}
local function condition(kind)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == kind then
        return c
      end
    end
  end
  return nil
end
local function said(c, fallback)
  if c == nil then
    return fallback
  end
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.status == nil or obj.status.observedGeneration == nil
    or (obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end
local ready = condition("Ready")
local phase = obj.status.phase
if ready ~= nil and ready.reason == "InvalidSpec" then
  hs.status = "Degraded"
  hs.message = said(ready)
elseif phase == "Promoted" then
  hs.status = "Healthy"
  hs.message = said(ready, "Promoted")
elseif phase == "RolledBack" then
  hs.status = "Degraded"
  hs.message = said(condition("RolledBack"), "RolledBack")
elseif phase == "Paused" then
  hs.status = "Suspended"
  hs.message = said(condition("Paused"), "Paused")
else
  local progressing = condition("Progressing")
  if progressing ~= nil and progressing.reason == "WaitingForPromote" then
    hs.status = "Suspended"
  else
    hs.status = "Progressing"
  end
  hs.message = said(progressing, "Waiting for the operator")
end
return hs
