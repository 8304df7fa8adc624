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

{{/* Name of the kopf peering object the replicas share. */}}
{{- define "lmscale.peeringName" -}}
{{- default (include "lmscale.fullname" .) .Values.peering.name }}
{{- end }}

{{/* Peering is on unless switched off; one replica may run standalone. */}}
{{- define "lmscale.peeringEnabled" -}}
{{- if .Values.peering.enabled }}true{{ end }}
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
# change removes (Ingress switched off, PodDisruptionBudget no longer needed).
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
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.enabled) }}
{{- fail "replicaCount > 1 needs peering.enabled=true: without kopf peering every replica would act at once" }}
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
