-- Argo CD health of a DriftMonitor: a monitor that cannot check (bad spec, no metrics, no dataset),
-- a failed retraining, and drift with no retraining for this episode are Degraded; while this
-- episode's retraining (its Job, its new version, its CanaryRollout) is under way it is Progressing.
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
local function said(c)
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
local drifted = condition("Drifted")
local retrained = condition("Retrained")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the first check"
elseif ready.status ~= "True" then
  hs.status = "Degraded"
  hs.message = said(ready)
elseif retrained ~= nil and retrained.status == "False" and retrained.reason == "JobFailed" then
  hs.status = "Degraded"
  hs.message = said(retrained)
elseif drifted ~= nil and drifted.status == "True" then
  local run = obj.status.lastRetraining
  if run ~= nil and run.driftEventId == obj.status.driftEventId then
    hs.status = "Progressing"
    if retrained ~= nil then
      hs.message = said(retrained)
    else
      hs.message = "retraining Job " .. run.jobName .. " started"
    end
  else
    hs.status = "Degraded"
    hs.message = said(drifted)
  end
else
  hs.status = "Healthy"
  if drifted ~= nil then
    hs.message = said(drifted)
  else
    hs.message = said(ready)
  end
end
return hs
