-- Argo CD health check for lmscale.dev/LanguageModelDeployment.
-- Install under resource.customizations.health.lmscale.dev_LanguageModelDeployment in argocd-cm.
-- Uses only the base and table libraries, which is what Argo CD's Lua VM opens.
--
-- Order matters: a status that predates the current spec says nothing about it, so it is
-- checked first; then the states that need a person (invalid spec, suspended, degraded);
-- then serving vs not yet serving.

local hs = {}

local function condition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function isFalse(c)
  return c ~= nil and c.status == "False"
end

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

-- Deleting: the operator's finalizer and the garbage collector are still at work.
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  if obj.metadata.finalizers ~= nil and #obj.metadata.finalizers > 0 then
    hs.message = "Pending deletion; blocked by finalizers: " .. table.concat(obj.metadata.finalizers, ", ")
  end
  return hs
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the lmscale operator to report status"
  return hs
end

-- A status written for an older generation says nothing about the spec Git just applied.
local generation = obj.metadata.generation
if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the lmscale operator to observe generation " .. generation
  else
    hs.message = "Waiting for the lmscale operator to observe the spec"
  end
  return hs
end

local conditions = status.conditions
local invalid = condition(conditions, "InvalidSpec")
local degraded = condition(conditions, "Degraded")
local ready = condition(conditions, "Ready")
local progressing = condition(conditions, "Progressing")
local schedulable = condition(conditions, "Schedulable")
local metricsAvailable = condition(conditions, "MetricsAvailable")

-- The spec cannot be served as written (unknown GPU, model does not fit, ...): fix Git.
if isTrue(invalid) then
  hs.status = "Degraded"
  hs.message = "Invalid spec: " .. messageOf(invalid, "see the InvalidSpec condition")
  return hs
end

-- Scaled to zero on purpose: autoscaling off and spec.replicas 0.
local spec = obj.spec or {}
if spec.scaling ~= nil and spec.scaling.enabled == false and spec.replicas == 0 then
  hs.status = "Suspended"
  hs.message = "Scaled to zero: autoscaling is disabled and spec.replicas is 0"
  return hs
end

if isTrue(degraded) then
  hs.status = "Degraded"
  hs.message = messageOf(degraded, "Degraded")
  return hs
end

-- Idle at zero under autoscaling: nothing is wrong, the next request brings a replica back.
if ready ~= nil and ready.reason == "ScaledToZero" then
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Scaled to zero while idle")
  return hs
end

if isTrue(ready) then
  -- A rollout of a new template (a change from Git) is under way: Argo CD waits for it, as
  -- for a Deployment. A scale change is the autoscaler's business, not a sync's.
  if isTrue(progressing) and progressing.reason ~= "Scaling" then
    hs.status = "Progressing"
    hs.message = messageOf(progressing, "Rolling out")
    return hs
  end
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Ready")
  if isTrue(progressing) then
    hs.message = hs.message .. "; " .. messageOf(progressing, "scaling")
  end
  -- Serving, but worth a look: extra replicas cannot land, or scaling is flying blind.
  if isFalse(schedulable) then
    hs.message = hs.message .. "; unschedulable replicas: " .. messageOf(schedulable, "no node fits")
  end
  -- Extra replicas did not come up within the Deployment's progress deadline.
  if progressing ~= nil and progressing.reason == "ProgressDeadlineExceeded" then
    hs.message = hs.message .. "; scale-up stalled: " .. messageOf(progressing, "progress deadline exceeded")
  end
  if isFalse(metricsAvailable) then
    hs.message = hs.message .. "; metrics unavailable: " .. messageOf(metricsAvailable, "holding replicas")
  end
  return hs
end

-- Nothing serves, and no node can take the replicas: waiting will not help.
if isFalse(schedulable) then
  hs.status = "Degraded"
  hs.message = "Unschedulable: " .. messageOf(schedulable, "no node has the requested GPU type")
  return hs
end

-- Replicas are starting; loading a model takes minutes.
hs.status = "Progressing"
if isTrue(progressing) then
  hs.message = messageOf(progressing, "Waiting for replicas to become ready")
else
  hs.message = messageOf(ready, "Waiting for replicas to become ready")
end
return hs
