{{- define "llmops.name" -}}llmops-operator{{- end -}}

{{- define "llmops.fullname" -}}
{{- if contains "llmops-operator" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-llmops-operator" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "llmops.labels" -}}
app.kubernetes.io/name: {{ include "llmops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "llmops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "llmops.fullname" .) .Values.serviceAccount.name }}
{{- else -}}{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* The rules the operator needs in each namespace it manages: exactly the calls it makes. */}}
{{- define "llmops.namespacedRules" -}}
- apiGroups: [llmops.dev]
  resources: [llmdeployments, canaryrollouts, driftmonitors]
  verbs: [get, list, watch, create, patch, delete]
# LLMGateway: read, and kopf's finalizer of its timer.
- apiGroups: [llmops.dev]
  resources: [llmgateways]
  verbs: [get, list, watch, patch]
- apiGroups: [llmops.dev]
  resources: [llmdeployments/status, canaryrollouts/status, driftmonitors/status, llmgateways/status, llmdeployments/scale]
  verbs: [get, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [services, persistentvolumeclaims]
  verbs: [list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [inference.networking.k8s.io]
  resources: [inferencepools]
  verbs: [list, watch, create, patch, delete]
{{- if has "Job" .Values.retraining.engines }}
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, create, delete]
{{- end }}
{{- if has "JobSet" .Values.retraining.engines }}
- apiGroups: [jobset.x-k8s.io]
  resources: [jobsets]
  verbs: [get, create, delete]
{{- end }}
{{- if .Values.retraining.kueue }}
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [list]
{{- end }}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch]
# LLMGateway children: its ConfigMap (config.yaml, above) written, its Service, PDB and
# ServiceMonitor read before an apply; the Secrets it references read for their resourceVersion.
- apiGroups: [""]
  resources: [services]
  verbs: [get]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
