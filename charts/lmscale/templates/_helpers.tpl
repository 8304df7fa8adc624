{{/* Chart name, overridable. */}}
{{- define "lmscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. A release named like the chart keeps the short name, so the default
install (`helm install lmscale ...`) names everything "lmscale".
*/}}
{{- define "lmscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "lmscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object the chart renders. */}}
{{- define "lmscale.labels" -}}
helm.sh/chart: {{ include "lmscale.chart" . }}
{{ include "lmscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lmscale
{{- end }}

{{/* Selector labels: stable across upgrades, so never include the version here. */}}
{{- define "lmscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lmscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The activator's selector labels (its own component). */}}
{{- define "lmscale.activatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "lmscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: activator
{{- end }}

{{- define "lmscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lmscale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: a digest pins the image exactly and wins over the tag. */}}
{{- define "lmscale.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Name of the leader-election Lease the replicas share (in the release namespace). */}}
{{- define "lmscale.leaseName" -}}
{{- default (include "lmscale.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
RBAC rules for the resources the operator reads and owns inside the namespaces it watches.
Used by the ClusterRole (all namespaces) or by one Role per watched namespace.
*/}}
{{- define "lmscale.namespacedRules" -}}
# The custom resource: kopf watches it and patches finalizers and annotations; the operator
# never writes spec, and status goes through the status subresource.
- apiGroups: ["lmscale.dev"]
  resources: ["languagemodeldeployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["lmscale.dev"]
  resources: ["languagemodeldeployments/status"]
  verbs: ["patch"]
# Children, written with server-side apply (create + patch); delete for children that a spec
# change removes (Ingress switched off, PodDisruptionBudget no longer needed, routing mode
# changed).
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# routing.mode gateway and inferencePool: the HTTPRoute, the InferencePool, and the endpoint
# picker's ConfigMap, ServiceAccount, Role and RoleBinding.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["inference.networking.k8s.io"]
  resources: ["inferencepools"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The endpoint picker's ConfigMap, ServiceAccount, Role and RoleBinding: read always (the
# operator looks for a picker it must remove when a model leaves inferencePool mode); written
# only with routing.inferencePool (writing Roles is a grant worth asking for explicitly).
- apiGroups: [""]
  resources: ["configmaps", "serviceaccounts"]
  verbs: ["get", "list", "watch"{{ if .Values.routing.inferencePool }}, "create", "patch", "delete"{{ end }}]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch"{{ if .Values.routing.inferencePool }}, "create", "patch", "delete"{{ end }}]
{{- if .Values.routing.inferencePool }}
# What the picker's Role grants, which the operator must hold itself to grant it.
- apiGroups: ["inference.networking.x-k8s.io"]
  resources: ["inferenceobjectives", "inferencemodelrewrites"]
  verbs: ["get", "list", "watch"]
{{- end }}
# Scale from zero (activator.enabled): the EndpointSlice of each model Service behind the
# activator, pointing at the activator or the pods. Read and delete always (the operator
# looks for a slice to remove when a model leaves the activator); written only with the
# activator, since a slice can send any Service's traffic anywhere.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch", "delete"{{ if .Values.activator.enabled }}, "create", "patch"{{ end }}]
# Pods: readiness, scheduling failures, and the pod-deletion-cost annotation that picks which
# replica goes first on scale-down.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "patch"]
# Events for what the operator does (kopf posts core events; newer clients use events.k8s.io).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Cluster-scoped reads that kopf needs in every mode. */}}
{{- define "lmscale.clusterRules" -}}
# kopf scans CRDs to resolve the resources it serves.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
# kopf lists and watches namespaces to follow the ones it serves.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}

{{/* Validation that the schema cannot express. */}}
{{- define "lmscale.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without leader election every replica would act at once" }}
{{- end }}
{{- if eq (int .Values.metrics.port) (int .Values.health.port) }}
{{- fail "metrics.port and health.port must differ: the operator serves /metrics and /healthz on separate ports" }}
{{- end }}
{{- if and .Values.prometheus.ca.configMap .Values.prometheus.ca.secret }}
{{- fail "set only one of prometheus.ca.configMap and prometheus.ca.secret" }}
{{- end }}
{{- if and (ne .Values.prometheus.auth.type "none") (not .Values.prometheus.auth.existingSecret) }}
{{- fail "prometheus.auth.type needs prometheus.auth.existingSecret (the name of a Secret in the release namespace)" }}
{{- end }}
{{- end }}
