-- Argo CD health of an LLMGateway: Ready is Healthy; a config it cannot apply (a Secret missing)
-- or an invalid spec is Degraded; replicas 0 is Suspended; anything else is Progressing.
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
local applied = condition("ConfigApplied")
if ready ~= nil and ready.reason == "InvalidSpec" then
  hs.status = "Degraded"
  hs.message = said(ready)
  return hs
end
if applied ~= nil and applied.status == "False" then
  hs.status = "Degraded"
  hs.message = said(applied)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = said(ready)
  return hs
end
if ready ~= nil and ready.reason == "ScaledToZero" then
  hs.status = "Suspended"
  hs.message = said(ready)
  return hs
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = said(ready)
else
  hs.message = "Waiting for the operator"
end
return hs
